/* The generation loop shared by `k2c generate`, `k2c run` and `k2c chat`: prefill the prompt (continuing
 * whatever the state already holds), then sample and decode one token at a time until a stop token,
 * the token limit, the callback's word, or a cancel flag (set from a signal handler for Ctrl-C). */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

int k2c_generate(k2c_state *s, k2c_sampler *sm, const int *prompt, int T, const k2c_gen_opts *o,
                 k2c_token_fn on_token, void *ctx, k2c_gen_stats *st) {
    const k2c_config *c = &s->m->cfg;
    k2c_gen_stats local = {0};
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    if (!logits) { k2c_seterr("out of memory"); return -1; }
    int rc = -1;
    double t0 = k2c_now();
    if (T > 0 && k2c_prefill(s, prompt, T, NULL, logits, NULL) != 0) goto done;
    if (T <= 0) { k2c_seterr("empty prompt"); goto done; }
    double t1 = k2c_now();
    st->prompt_tokens = T;
    st->prefill_s = t1 - t0;
    st->stop = K2C_STOP_LENGTH;
    st->pending = -1;
    for (int n = 0; n < o->max_tokens; n++) {
        if (o->cancel && *o->cancel) { st->stop = K2C_STOP_CANCEL; break; }
        int id = k2c_sample(sm, logits);
        st->pending = id;
        int is_stop = id == c->eos_token_id;
        for (int i = 0; i < o->nstop && !is_stop; i++) is_stop = id == o->stop_ids[i];
        if (o->ignore_eos) is_stop = 0;
        if (is_stop) { st->stop = K2C_STOP_EOS; break; }
        st->generated++;
        if (on_token && on_token(ctx, id)) { st->stop = K2C_STOP_CALLBACK; break; }
        if (n + 1 == o->max_tokens) break;
        if (s->pos >= s->max_ctx) { st->stop = K2C_STOP_CONTEXT; break; }
        if (k2c_decode(s, id, logits, NULL) != 0) goto done;
        st->pending = -1;
    }
    st->decode_s = k2c_now() - t1;
    rc = 0;
done:
    free(logits);
    return rc;
}
