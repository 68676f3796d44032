/* `k2c plot`: loss and max-attention-logit curves of one or more training logs (JSONL from k2c train) as
 * an SVG with two panels, written directly (no plotting library); for logs of k2c rl, panels of reward,
 * success rate, mean length and KL to the SFT policy. Training loss is drawn thin, eval loss
 * (when logged) thick with dots; a run's colour is the same in both panels. The logit panel draws the max
 * logit of each step's forward solid, the one measured after the step (--measure-after-step) dashed, and
 * QK-Clip's tau (logged by MuonClip runs) as a dotted level. */
#include "train/train.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { double *x, *loss, *ev, *ml, *af; int n, cap; double tau; char name[128]; } series;

static int push(series *s, double x, double l, double e, double m, double af) {
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 256;
        double *a = realloc(s->x, nc * sizeof *a); if (!a) return -1; s->x = a;
        a = realloc(s->loss, nc * sizeof *a); if (!a) return -1; s->loss = a;
        a = realloc(s->ev, nc * sizeof *a); if (!a) return -1; s->ev = a;
        a = realloc(s->ml, nc * sizeof *a); if (!a) return -1; s->ml = a;
        a = realloc(s->af, nc * sizeof *a); if (!a) return -1; s->af = a;
        s->cap = nc;
    }
    s->x[s->n] = x; s->loss[s->n] = l; s->ev[s->n] = e; s->ml[s->n] = m; s->af[s->n] = af; s->n++;
    return 0;
}

static double num(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int read_log(series *s, const char *path, const char *xkey) {
    size_t n;
    char *text = k2c_read_file(path, &n);
    if (!text) return -1;
    const char *base = strrchr(path, '/');
    snprintf(s->name, sizeof s->name, "%s", base ? base + 1 : path);
    s->tau = NAN;
    int line = 0, rc = 0;
    for (char *p = text; *p && rc == 0;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        if (*p) {
            json_error_t err;
            json_t *o = json_loads(p, 0, &err);
            if (!o) { k2c_seterr("%s:%d: not JSON: %s", path, line, err.text); rc = -1; break; }
            double x = num(o, xkey);
            if (isnan(x)) { k2c_seterr("%s:%d: no numeric field '%s'", path, line, xkey); rc = -1; }
            else if (push(s, x, num(o, "loss"), num(o, "eval_loss"), num(o, "max_logit"), num(o, "max_logit_after_step"))) {
                k2c_seterr("out of memory");
                rc = -1;
            }
            if (!isnan(num(o, "tau"))) s->tau = num(o, "tau");
            json_decref(o);
        }
        if (!nl) break;
        p = nl + 1;
    }
    free(text);
    if (!rc && !s->n) { k2c_seterr("%s: empty log", path); rc = -1; }
    return rc;
}

static const char *COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

typedef struct { double x0, x1, y0, y1; int px, py, w, h; } frame;

static double sx(const frame *f, double x) { return f->px + (x - f->x0) / (f->x1 - f->x0) * f->w; }
static double sy(const frame *f, double y) { return f->py + f->h - (y - f->y0) / (f->y1 - f->y0) * f->h; }

static void axes(FILE *o, const frame *f, const char *title, const char *xl) {
    fprintf(o, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>\n", f->px, f->py, f->w, f->h);
    fprintf(o, "<text x='%d' y='%d' font-size='15' font-weight='bold'>%s</text>\n", f->px, f->py - 8, title);
    for (int i = 0; i <= 5; i++) {
        double y = f->y0 + (f->y1 - f->y0) * i / 5, x = f->x0 + (f->x1 - f->x0) * i / 5;
        fprintf(o, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n", f->px, f->px + f->w, sy(f, y), sy(f, y));
        fprintf(o, "<text x='%d' y='%.1f' font-size='11' text-anchor='end'>%.3g</text>\n", f->px - 4, sy(f, y) + 4, y);
        fprintf(o, "<text x='%.1f' y='%d' font-size='11' text-anchor='middle'>%.4g</text>\n", sx(f, x), f->py + f->h + 14, x);
    }
    fprintf(o, "<text x='%d' y='%d' font-size='12' text-anchor='middle'>%s</text>\n", f->px + f->w / 2, f->py + f->h + 30, xl);
}

static void curve(FILE *o, const frame *f, const series *s, const double *y, const char *col, double width, int dots,
                  const char *dash) {
    int open = 0;
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(y[i])) continue;
        if (!open) {
            fprintf(o, "<polyline fill='none' stroke='%s' stroke-width='%.1f'%s%s%s points='", col, width,
                    dash ? " stroke-dasharray='" : "", dash ? dash : "", dash ? "'" : "");
            open = 1;
        }
        fprintf(o, "%.1f,%.1f ", sx(f, s->x[i]), sy(f, fmin(fmax(y[i], f->y0), f->y1)));
    }
    if (open) fprintf(o, "'/>\n");
    if (dots)
        for (int i = 0; i < s->n; i++)
            if (isfinite(y[i])) fprintf(o, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", sx(f, s->x[i]), sy(f, y[i]), col);
}

static void range(const series *S, int n, int which, double *lo, double *hi) {
    *lo = INFINITY; *hi = -INFINITY;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < S[k].n; i++) {
            double v = which == 0 ? S[k].x[i] : which == 1 ? S[k].loss[i] : which == 2 ? S[k].ev[i] : S[k].ml[i];
            if (isfinite(v)) { *lo = fmin(*lo, v); *hi = fmax(*hi, v); }
            if (which == 3 && isfinite(S[k].af[i])) { *lo = fmin(*lo, S[k].af[i]); *hi = fmax(*hi, S[k].af[i]); }
        }
}

/* ------------------------------------------------------------------ RL logs (k2c rl): a panel per metric */
#define RL_KEYS 4
static const char *RLK[RL_KEYS] = {"reward", "success", "length", "kl"};
static const char *RLT[RL_KEYS] = {"reward (mean over rollouts)", "success rate", "mean generated tokens", "KL to the SFT policy (per token)"};
typedef struct { double *x, *v[RL_KEYS]; int n; char name[128]; } rlseries;

static int read_rl(rlseries *s, const char *path, const char *xkey) {
    size_t n;
    char *text = k2c_read_file(path, &n);
    if (!text) return -1;
    const char *base = strrchr(path, '/');
    snprintf(s->name, sizeof s->name, "%s", base ? base + 1 : path);
    int lines = 1, line = 0, rc = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    s->x = malloc((size_t)lines * sizeof(double));
    for (int k = 0; k < RL_KEYS; k++) s->v[k] = malloc((size_t)lines * sizeof(double));
    for (int k = 0; k < RL_KEYS; k++) if (!s->v[k]) rc = -1;
    if (!s->x || rc) { free(text); k2c_seterr("out of memory"); return -1; }
    for (char *p = text; *p && rc == 0;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        if (*p) {
            json_error_t err;
            json_t *o = json_loads(p, 0, &err);
            if (!o) { k2c_seterr("%s:%d: not JSON: %s", path, line, err.text); rc = -1; break; }
            double x = num(o, xkey);
            if (isnan(x)) { k2c_seterr("%s:%d: no numeric field '%s'", path, line, xkey); rc = -1; }
            else {
                s->x[s->n] = x;
                for (int k = 0; k < RL_KEYS; k++) s->v[k][s->n] = num(o, RLK[k]);
                s->n++;
            }
            json_decref(o);
        }
        if (!nl) break;
        p = nl + 1;
    }
    free(text);
    if (!rc && !s->n) { k2c_seterr("%s: empty log", path); rc = -1; }
    return rc;
}

static int plot_rl(const char *out, int nlogs, const char *const *logs, const char *x_key) {
    rlseries *S = calloc((size_t)(nlogs > 0 ? nlogs : 1), sizeof *S);
    int rc = -1;
    FILE *o = NULL;
    char *tmp = NULL;
    if (!S) { k2c_seterr("out of memory"); return -1; }
    for (int i = 0; i < nlogs; i++) if (read_rl(&S[i], logs[i], x_key)) goto done;
    double x0 = INFINITY, x1 = -INFINITY;
    for (int k = 0; k < nlogs; k++) for (int i = 0; i < S[k].n; i++) { x0 = fmin(x0, S[k].x[i]); x1 = fmax(x1, S[k].x[i]); }
    if (!(x1 > x0)) x1 = x0 + 1;
    tmp = malloc(strlen(out) + 8);
    if (!tmp) { k2c_seterr("out of memory"); goto done; }
    sprintf(tmp, "%s.tmp", out);
    if (!(o = fopen(tmp, "w"))) { k2c_seterr("%s: cannot write", tmp); goto done; }
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='1100' height='%d' font-family='sans-serif'>\n", 60 + 230 * RL_KEYS);
    fprintf(o, "<rect width='100%%' height='100%%' fill='white'/>\n");
    for (int p = 0; p < RL_KEYS; p++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int k = 0; k < nlogs; k++)
            for (int i = 0; i < S[k].n; i++) if (isfinite(S[k].v[p][i])) { lo = fmin(lo, S[k].v[p][i]); hi = fmax(hi, S[k].v[p][i]); }
        if (!isfinite(lo)) { lo = 0; hi = 1; }
        if (p == 1) { lo = 0; hi = 1; }                  /* a rate */
        if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
        frame f = {x0, x1, lo, hi, 70, 40 + 230 * p, 800, 170};
        axes(o, &f, RLT[p], x_key);
        for (int k = 0; k < nlogs; k++) {
            series view = {.x = S[k].x, .n = S[k].n};
            curve(o, &f, &view, S[k].v[p], COLORS[k % 8], 1.5, S[k].n < 60, NULL);
        }
    }
    for (int k = 0; k < nlogs; k++)
        fprintf(o, "<rect x='885' y='%d' width='14' height='4' fill='%s'/><text x='905' y='%d' font-size='12'>%s</text>\n",
                44 + 20 * k, COLORS[k % 8], 50 + 20 * k, S[k].name);
    fprintf(o, "</svg>\n");
    if (fclose(o)) { o = NULL; k2c_seterr("%s: write failed", tmp); goto done; }
    o = NULL;
    if (rename(tmp, out)) { k2c_seterr("%s: rename failed", out); goto done; }
    rc = 0;
done:
    if (o) fclose(o);
    free(tmp);
    for (int i = 0; i < nlogs; i++) { free(S[i].x); for (int k = 0; k < RL_KEYS; k++) free(S[i].v[k]); }
    free(S);
    return rc;
}

/* A log of k2c rl (its first line has "reward"): the RL panels, against the step unless x is logged. */
static int is_rl_log(const char *path) {
    size_t n;
    char *text = k2c_read_file(path, &n);
    if (!text) return 0;
    char *nl = strchr(text, '\n');
    if (nl) *nl = 0;
    json_t *o = json_loads(text, 0, NULL);
    int rl = json_is_number(json_object_get(o, "reward"));
    json_decref(o);
    free(text);
    return rl;
}

int k2c_plot_logs(const char *out, int nlogs, const char *const *logs, const char *x_key) {
    if (nlogs <= 0) { k2c_seterr("plot: no logs"); return -1; }
    if (is_rl_log(logs[0])) return plot_rl(out, nlogs, logs, !strcmp(x_key, "tokens") ? "step" : x_key);
    series *S = calloc((size_t)nlogs, sizeof *S);
    int rc = -1;
    FILE *o = NULL;
    char *tmp = NULL;
    if (!S) { k2c_seterr("out of memory"); return -1; }
    for (int i = 0; i < nlogs; i++) if (read_log(&S[i], logs[i], x_key)) goto done;
    double x0, x1, a0, a1, e0, e1, m0, m1;
    range(S, nlogs, 0, &x0, &x1); range(S, nlogs, 1, &a0, &a1); range(S, nlogs, 2, &e0, &e1); range(S, nlogs, 3, &m0, &m1);
    if (isfinite(e0)) { a0 = fmin(a0, e0); a1 = fmax(a1, e1); }
    /* the first steps of a run dwarf the rest: clip the loss axis at the 2nd-step maximum */
    double cap = -INFINITY;
    for (int k = 0; k < nlogs; k++) if (S[k].n > 2) cap = fmax(cap, S[k].loss[2]);
    if (isfinite(cap) && cap < a1) a1 = cap;
    if (x1 <= x0) x1 = x0 + 1;
    if (!(a1 > a0)) { a0 -= 1; a1 += 1; }
    if (!isfinite(m0)) { m0 = 0; m1 = 1; }
    if (!(m1 > m0)) m1 = m0 + 1;
    m0 = fmin(m0, 0);
    frame f1 = {x0, x1, a0, a1, 70, 40, 800, 300}, f2 = {x0, x1, m0, m1 * 1.05, 70, 420, 800, 220};
    tmp = malloc(strlen(out) + 8);
    if (!tmp) { k2c_seterr("out of memory"); goto done; }
    sprintf(tmp, "%s.tmp", out);
    if (!(o = fopen(tmp, "w"))) { k2c_seterr("%s: cannot write", tmp); goto done; }
    int legend_h = 20 * nlogs;
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='1100' height='%d' font-family='sans-serif'>\n", 700 > 100 + legend_h ? 700 : 100 + legend_h);
    fprintf(o, "<rect width='100%%' height='100%%' fill='white'/>\n");
    axes(o, &f1, "loss (thin: train, thick+dots: eval)", x_key);
    axes(o, &f2, "max attention logit", x_key);
    for (int k = 0; k < nlogs; k++) {
        const char *col = COLORS[k % 8];
        curve(o, &f1, &S[k], S[k].loss, col, 1.0, 0, NULL);
        curve(o, &f1, &S[k], S[k].ev, col, 2.5, 1, NULL);
        curve(o, &f2, &S[k], S[k].ml, col, 1.5, 0, NULL);
        curve(o, &f2, &S[k], S[k].af, col, 1.5, 0, "6,3");
        if (isfinite(S[k].tau) && S[k].tau >= f2.y0 && S[k].tau <= f2.y1)
            fprintf(o, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='%s' stroke-dasharray='2,3'/>"
                       "<text x='%d' y='%.1f' font-size='11' fill='%s'>tau %.4g</text>\n", f2.px, f2.px + f2.w,
                    sy(&f2, S[k].tau), sy(&f2, S[k].tau), col, f2.px + f2.w + 4, sy(&f2, S[k].tau) + 4, col, S[k].tau);
        fprintf(o, "<rect x='885' y='%d' width='14' height='4' fill='%s'/><text x='905' y='%d' font-size='12'>%s</text>\n",
                44 + 20 * k, col, 50 + 20 * k, S[k].name);
    }
    fprintf(o, "</svg>\n");
    if (fclose(o)) { o = NULL; k2c_seterr("%s: write failed", tmp); goto done; }
    o = NULL;
    if (rename(tmp, out)) { k2c_seterr("%s: rename failed", out); goto done; }
    rc = 0;
done:
    if (o) fclose(o);
    free(tmp);
    for (int i = 0; i < nlogs; i++) { free(S[i].x); free(S[i].loss); free(S[i].ev); free(S[i].ml); free(S[i].af); }
    free(S);
    return rc;
}
