/* Task synthesis: agentic tasks over the built-in tools, each with a verifier and a reference trajectory.
 *
 * K2 synthesises tool-use tasks at scale from tool declarations, runs them in simulated environments and
 * keeps verified trajectories. This is that pipeline at the scale of one machine: per category a list of
 * base templates (the way a user might ask), each rendered through a frame (polite, terse, chatty), a casing
 * (as written, lower, UPPER) and number formats (1850000, 1,850,000, 1.85 million; 3.5), so one task
 * family has hundreds of surface forms. The reference trajectory is not written by hand: the synthesiser
 * decides the calls a competent agent makes, runs each one against a fresh environment (the same toolbox
 * the agent uses, so results and errors are exactly what the model will see), reads the results to make
 * the next choice (the cheapest flight, the next flight when the first is full) and phrases the final
 * answer from them. The verifier is derived from the same run: the expected answer or final state.
 *
 * Categories, by difficulty: 1 calculator, units, dates, files (one call); 2 chain (two dependent calls),
 * distractor (irrelevant facts and extra tools), travel_search (search and choose); 3 travel_book,
 * hotel_book (search, choose, book), retry (the first booking fails: full flight, take the next); 4 trip
 * (flight and hotel, four calls: K2's Da Nang example).
 *
 * Held-out split: a template is (base, frame). Training uses bases with index % 5 != 4 under frames 0..5;
 * held-out uses the rest (bases % 5 == 4 under any frame, every base under frames 6 and 7), so no held-out
 * task is phrased the way any training task is. */
#include "serve/serve.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ randomness and text */
typedef struct { uint64_t s; } rng;
static uint64_t rnext(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int rint_in(rng *r, int lo, int hi) { return lo + (int)(rnext(r) % (uint64_t)(hi - lo + 1)); }
#define PICK(r, arr) (arr)[rnext(r) % (sizeof(arr) / sizeof((arr)[0]))]

/* tpl with {A}..{F} replaced by v[0]..v[5] */
static void subst(char *out, size_t cap, const char *tpl, const char *const v[6]) {
    size_t n = 0;
    for (const char *p = tpl; *p && n + 1 < cap; p++) {
        if (p[0] == '{' && p[1] >= 'A' && p[1] <= 'F' && p[2] == '}') {
            const char *s = v[p[1] - 'A'] ? v[p[1] - 'A'] : "";
            while (*s && n + 1 < cap) out[n++] = *s++;
            p += 2;
        } else out[n++] = *p;
    }
    out[n] = 0;
}

/* an integer as 1850000, 1,850,000, or (round millions, prices) 1.85 million */
static void fmt_int(char *out, size_t cap, long v, int style) {
    if (style == 2 && v >= 1000000 && v % 10000 == 0) {
        char b[32];
        snprintf(b, sizeof b, "%.2f", v / 1e6);
        size_t l = strlen(b);
        while (l && b[l - 1] == '0') b[--l] = 0;
        if (l && b[l - 1] == '.') b[--l] = 0;
        snprintf(out, cap, "%s million", b);
        return;
    }
    char d[32];
    snprintf(d, sizeof d, "%ld", v < 0 ? -v : v);
    size_t l = strlen(d), n = 0;
    if (v < 0 && n + 1 < cap) out[n++] = '-';
    for (size_t i = 0; i < l && n + 2 < cap; i++) {
        out[n++] = d[i];
        if (style >= 1 && l - 1 - i > 0 && (l - 1 - i) % 3 == 0) out[n++] = ',';
    }
    out[n] = 0;
}

static void fmt_num(char *out, size_t cap, double v) {     /* short: 3.5, 1517, 0.25 */
    snprintf(out, cap, "%.4f", v);
    size_t l = strlen(out);
    while (l && out[l - 1] == '0') out[--l] = 0;
    if (l && out[l - 1] == '.') out[--l] = 0;
}

/* ------------------------------------------------------------------ frames */
static const char *FRAMES[8] = {
    "{A}", "Please, {A}", "Could you help me? {A}", "Hi! {A} Thanks.", "Quick one: {A}", "{A} Thank you!",
    "I was wondering: {A}", "Hey there. {A} Cheers",
};

/* ------------------------------------------------------------------ one task being built */
typedef struct {
    rng r;
    int base, frame, casing, numstyle;
    char category[24], tools[48], text[1024];
    int difficulty;
    k2c_toolbox *box;
    char workdir[64];
    json_t *files;          /* name -> content, or NULL */
    json_t *msgs;           /* the reference trajectory */
    json_t *verify;
    int ncalls;
} task;

static void say_user(task *t, const char *q) {
    char f[1024];
    const char *v[6] = {q};
    subst(f, sizeof f, FRAMES[t->frame], v);
    for (char *p = f; *p; p++) {
        if (t->casing == 1) *p = (char)tolower((unsigned char)*p);
        else if (t->casing == 2) *p = (char)toupper((unsigned char)*p);
    }
    if (t->casing == 0 && f[0]) f[0] = (char)toupper((unsigned char)f[0]);
    snprintf(t->text, sizeof t->text, "%s", f);
    json_array_append_new(t->msgs, json_pack("{s:s,s:s}", "role", "user", "content", t->text));
}

/* Runs a call on the environment and records it in the trajectory; returns the result text as the model
 * sees it (malloc'd; "Error: ..." for a failed call) and *failed. */
static char *call(task *t, const char *name, json_t *args, int *failed) {
    char *a = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(args);
    if (!a) return NULL;
    int is_error;
    char *res = k2c_toolbox_call(t->box, name, a, &is_error), *text = NULL;
    if (!res && asprintf(&text, "Error: %s", k2c_errmsg()) < 0) text = NULL;
    if (res) text = res;
    char id[64];
    snprintf(id, sizeof id, "functions.%s:%d", name, t->ncalls++);
    json_t *tc = json_pack("[{s:s,s:s,s:{s:s,s:s}}]", "id", id, "type", "function", "function", "name", name, "arguments", a);
    json_array_append_new(t->msgs, json_pack("{s:s,s:s,s:o}", "role", "assistant", "content", "", "tool_calls", tc));
    json_array_append_new(t->msgs, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", id, "content", text ? text : ""));
    free(a);
    if (failed) *failed = res == NULL;
    return text;
}

static void answer(task *t, const char *a) {
    json_array_append_new(t->msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", a));
}

static void expect_answer(task *t, const char *s) {
    json_t *a = json_object_get(t->verify, "answer");
    if (!a) { a = json_array(); json_object_set_new(t->verify, "answer", a); }
    json_array_append_new(a, json_string(s));
}
static void expect_calls(task *t, const char *const *names, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_string(names[i]));
    json_object_set_new(t->verify, "calls", a);
}
static void expect_number(task *t, double v, double tol) {
    json_object_set_new(t->verify, "number", json_pack("{s:f,s:f}", "value", v, "tol", tol));
}
static void expect_booking(task *t, const char *type, const char *id, int count) {
    json_t *a = json_object_get(t->verify, "state");
    if (!a) { a = json_array(); json_object_set_new(t->verify, "state", a); }
    json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "type", type, "id", id, "count", count));
}

/* a random ISO date of years lo..hi */
static void rand_date(rng *r, int lo, int hi, char out[11]) {
    long d0 = 0, d1 = 0;
    char a[11], b[11];
    snprintf(a, sizeof a, "%04d-01-01", lo);
    snprintf(b, sizeof b, "%04d-12-31", hi);
    k2c_date_parse(a, &d0);
    k2c_date_parse(b, &d1);
    k2c_date_format(d0 + (long)(rnext(r) % (uint64_t)(d1 - d0 + 1)), out);
}

/* ------------------------------------------------------------------ 1: calculator */
static const struct { const char *q, *expr; } CALC[] = {
    {"what's {A} times {B}?", "{A}*{B}"}, {"what is {A} multiplied by {B}?", "{A}*{B}"}, {"calculate {A} * {B}", "{A}*{B}"},
    {"how much is {A} times {B}?", "{A}*{B}"}, {"what do you get when you multiply {A} by {B}?", "{A}*{B}"},
    {"what is {A} plus {B}?", "{A}+{B}"}, {"add {A} and {B}", "{A}+{B}"}, {"what's the sum of {A} and {B}?", "{A}+{B}"},
    {"what is {A} minus {B}?", "{A}-{B}"}, {"subtract {B} from {A}", "{A}-{B}"}, {"what is {D} divided by {B}?", "{D}/{B}"},
    {"how much is {D} over {B}?", "{D}/{B}"}, {"what's the product of {A} and {B}?", "{A}*{B}"}, {"{A} x {B} = ?", "{A}*{B}"},
    {"compute {A} + {B}", "{A}+{B}"}, {"what is {C}% of {A}?", "{A}*{C}/100"}, {"what's {A} squared?", "{A}^2"},
    {"take {A}, add {B}, then multiply by {C}", "({A}+{B})*{C}"}, {"what is {C} to the power of 3?", "{C}^3"},
    {"what's {A} times {B} minus {C}?", "{A}*{B}-{C}"},
};
#define NCALC (int)(sizeof CALC / sizeof CALC[0])
static const char *CALC_ANS[] = {"The answer is {R}.", "It's {R}.", "{E} = {R}.", "That comes to {R}.", "{R}"};

/* The question (into q) and the call's expression; the numbers as shown may carry thousands separators. */
static void calc_question(task *t, int base, char *q, size_t qcap, char *expr, size_t ecap) {
    long A = rint_in(&t->r, 2, 999), B = rint_in(&t->r, 2, 99), C = rint_in(&t->r, 2, 20), D = A * B;
    if (rnext(&t->r) % 4 == 0) A = rint_in(&t->r, 1000, 99999);
    char sa[32], sb[32], sc[32], sd[32], pa[32], pb[32], pc[32], pd[32];
    fmt_int(sa, sizeof sa, A, t->numstyle == 1); fmt_int(sb, sizeof sb, B, t->numstyle == 1);
    fmt_int(sc, sizeof sc, C, 0); fmt_int(sd, sizeof sd, D, t->numstyle == 1);
    snprintf(pa, sizeof pa, "%ld", A); snprintf(pb, sizeof pb, "%ld", B); snprintf(pc, sizeof pc, "%ld", C); snprintf(pd, sizeof pd, "%ld", D);
    const char *shown[6] = {sa, sb, sc, sd}, *plain[6] = {pa, pb, pc, pd};
    subst(q, qcap, CALC[base].q, shown);
    subst(expr, ecap, CALC[base].expr, plain);
}

static int gen_calc(task *t) {
    char q[256], e[128];
    calc_question(t, t->base, q, sizeof q, e, sizeof e);
    strcpy(t->category, "calculator"); strcpy(t->tools, "calculator");
    t->difficulty = 1;
    say_user(t, q);
    char *res = call(t, "calculator", json_pack("{s:s}", "expression", e), NULL);
    if (!res) return -1;
    char a[256];
    const char *v[6] = {NULL, NULL, NULL, NULL, e, res};
    char tpl[64];
    snprintf(tpl, sizeof tpl, "%s", PICK(&t->r, CALC_ANS));
    for (char *p = tpl; (p = strstr(p, "{R}")); ) p[1] = 'F';
    subst(a, sizeof a, tpl, v);
    answer(t, a);
    expect_number(t, strtod(res, NULL), 1e-6 * fabs(strtod(res, NULL)) + 1e-6);
    free(res);
    return 0;
}

/* ------------------------------------------------------------------ 1: units */
static const char *UNITS_Q[] = {
    "convert {A} {B} to {C}", "how many {C} is {A} {B}?", "what is {A} {B} in {C}?", "{A} {B} in {C}?",
    "I have {A} {B}. How much is that in {C}?", "express {A} {B} in {C}", "what's {A} {B} converted to {C}?",
    "change {A} {B} into {C}", "how much is {A} {B} in {C}?", "tell me {A} {B} in {C}",
};
static const struct { const char *from, *to, *fname, *tname; int lo, hi; } UPAIRS[] = {
    {"km", "mi", "kilometers", "miles", 1, 500}, {"mi", "km", "miles", "kilometers", 1, 500}, {"m", "ft", "meters", "feet", 1, 300},
    {"ft", "m", "feet", "meters", 1, 3000}, {"in", "cm", "inches", "centimeters", 1, 100}, {"cm", "in", "centimeters", "inches", 1, 300},
    {"yd", "m", "yards", "meters", 1, 500}, {"kg", "lb", "kilograms", "pounds", 1, 200}, {"lb", "kg", "pounds", "kilograms", 1, 400},
    {"g", "oz", "grams", "ounces", 10, 2000}, {"oz", "g", "ounces", "grams", 1, 64}, {"C", "F", "degrees Celsius", "degrees Fahrenheit", -30, 45},
    {"F", "C", "degrees Fahrenheit", "degrees Celsius", -20, 110}, {"C", "K", "degrees Celsius", "kelvin", -50, 100},
    {"l", "gal", "liters", "gallons", 1, 200}, {"gal", "l", "gallons", "liters", 1, 50}, {"ml", "l", "milliliters", "liters", 50, 5000},
    {"h", "min", "hours", "minutes", 1, 48}, {"day", "h", "days", "hours", 1, 30}, {"min", "s", "minutes", "seconds", 1, 120},
};
#define NUPAIRS (int)(sizeof UPAIRS / sizeof UPAIRS[0])

static int gen_units(task *t) {
    int k = (int)(rnext(&t->r) % NUPAIRS);
    double v = rint_in(&t->r, UPAIRS[k].lo, UPAIRS[k].hi);
    if (rnext(&t->r) % 3 == 0) v += 0.5;                    /* 3.5 */
    char sv[32], q[256];
    fmt_num(sv, sizeof sv, v);
    int names = rnext(&t->r) % 2;
    const char *vals[6] = {sv, names ? UPAIRS[k].fname : UPAIRS[k].from, names ? UPAIRS[k].tname : UPAIRS[k].to};
    subst(q, sizeof q, UNITS_Q[t->base], vals);
    strcpy(t->category, "units"); strcpy(t->tools, "units");
    t->difficulty = 1;
    say_user(t, q);
    int failed;
    char *res = call(t, "convert_units", json_pack("{s:f,s:s,s:s}", "value", v, "from", UPAIRS[k].from, "to", UPAIRS[k].to), &failed);
    if (!res || failed) { free(res); return -1; }
    json_t *j = json_loads(res, 0, NULL);
    double r = json_number_value(json_object_get(j, "result"));
    json_decref(j);
    char sr[32], a[256];
    snprintf(sr, sizeof sr, "%.2f", r);
    fmt_num(sr, sizeof sr, strtod(sr, NULL));
    snprintf(a, sizeof a, "%s %s is about %s %s.", sv, UPAIRS[k].from, sr, UPAIRS[k].to);
    answer(t, a);
    expect_number(t, r, 0.01 + 0.001 * fabs(r));
    free(res);
    return 0;
}

/* ------------------------------------------------------------------ 1: dates */
static const char *DATES_Q[] = {
    "how many days are there between {A} and {B}?", "how many days from {A} to {B}?", "count the days from {A} until {B}",
    "number of days between {A} and {B}?", "how long is it, in days, from {A} to {B}?",
    "what day of the week is {A}?", "which weekday is {A}?", "{A} falls on what day of the week?", "what weekday was {A}?",
    "tell me the day of the week for {A}",
    "what date is {C} days after {A}?", "add {C} days to {A}", "what's the date {C} days from {A}?",
    "which date comes {C} days after {A}?", "if today is {A}, what is the date in {C} days?",
};

static int gen_dates(task *t) {
    char a[11], b[11], n[16], q[256], ans[256];
    rand_date(&t->r, 2020, 2030, a);
    rand_date(&t->r, 2020, 2030, b);
    int days = rint_in(&t->r, 1, 400);
    snprintf(n, sizeof n, "%d", days);
    const char *v[6] = {a, b, n};
    subst(q, sizeof q, DATES_Q[t->base], v);
    strcpy(t->category, "dates"); strcpy(t->tools, "dates");
    t->difficulty = 1;
    say_user(t, q);
    char *res;
    json_t *j;
    if (t->base < 5) {
        res = call(t, "days_between", json_pack("{s:s,s:s}", "start", a, "end", b), NULL);
        j = res ? json_loads(res, 0, NULL) : NULL;
        long d = (long)json_integer_value(json_object_get(j, "days"));
        snprintf(ans, sizeof ans, "There are %ld days from %s to %s.", d, a, b);
        expect_number(t, (double)d, 0.01);
    } else if (t->base < 10) {
        res = call(t, "weekday", json_pack("{s:s}", "date", a), NULL);
        j = res ? json_loads(res, 0, NULL) : NULL;
        const char *w = json_string_value(json_object_get(j, "weekday"));
        snprintf(ans, sizeof ans, "%s is a %s.", a, w ? w : "?");
        expect_answer(t, w ? w : "?");
    } else {
        res = call(t, "add_days", json_pack("{s:s,s:i}", "date", a, "days", days), NULL);
        j = res ? json_loads(res, 0, NULL) : NULL;
        const char *d = json_string_value(json_object_get(j, "date"));
        snprintf(ans, sizeof ans, "%d days after %s is %s.", days, a, d ? d : "?");
        expect_answer(t, d ? d : "?");
    }
    json_decref(j);
    free(res);
    answer(t, ans);
    return 0;
}

/* ------------------------------------------------------------------ 1: files */
static const char *FILES_Q[] = {
    "what does {A} say?", "read {A} and tell me the code word", "what is written in {A}?", "open {A}: what's the code word?",
    "look in {A} and give me the code word", "what's inside {A}?", "check the file {A} and tell me what it says",
    "show me the content of {A}", "list the files in the folder", "which files are there in the working directory?",
};
static const char *WORDS[] = {"lotus", "monsoon", "lantern", "harbor", "jade", "pepper", "cinnamon", "typhoon", "orchid", "mango",
                              "falcon", "copper", "saffron", "glacier", "velvet", "meadow", "comet", "ember", "quartz", "willow"};
static const char *FNAMES[] = {"notes.txt", "todo.txt", "readme.md", "secret.txt", "memo.txt", "info.txt", "plan.md", "log.txt"};

static int make_files(task *t, int nfiles, const char **names, char words[][16]) {
    snprintf(t->workdir, sizeof t->workdir, "/tmp/k2c-synth-XXXXXX");
    if (!mkdtemp(t->workdir)) { k2c_seterr("mkdtemp: %s", strerror(errno)); t->workdir[0] = 0; return -1; }
    t->files = json_object();
    for (int i = 0; i < nfiles; i++) {
        char content[128], *p = k2c_path_join(t->workdir, names[i]);
        snprintf(content, sizeof content, "The code word is %s.\n", words[i]);
        int rc = p ? k2c_write_file_atomic(p, content, strlen(content)) : -1;
        free(p);
        if (rc) return -1;
        json_object_set_new(t->files, names[i], json_string(content));
    }
    k2c_toolbox_free(t->box);
    k2c_toolbox_opts o = {.workdir = t->workdir};
    if (k2c_tool_groups_parse(t->tools, &o.groups) || !(t->box = k2c_toolbox_new(&o))) return -1;
    return 0;
}

static int gen_files(task *t) {
    strcpy(t->category, "files"); strcpy(t->tools, "files");
    t->difficulty = 1;
    const char *names[3];
    char words[3][16];
    int k0 = (int)(rnext(&t->r) % 8);
    for (int i = 0; i < 3; i++) { names[i] = FNAMES[(k0 + i * 3) % 8]; snprintf(words[i], sizeof words[i], "%s", PICK(&t->r, WORDS)); }
    if (make_files(t, 3, names, words)) return -1;
    char q[256], a[256];
    const char *v[6] = {names[0]};
    subst(q, sizeof q, FILES_Q[t->base], v);
    say_user(t, q);
    char *res;
    if (t->base >= 8) {
        res = call(t, "list_dir", json_pack("{s:s}", "path", "."), NULL);
        snprintf(a, sizeof a, "The folder holds %s, %s and %s.", names[0], names[1], names[2]);
        for (int i = 0; i < 3; i++) expect_answer(t, names[i]);
    } else {
        res = call(t, "read_file", json_pack("{s:s}", "path", names[0]), NULL);
        snprintf(a, sizeof a, "%s says: the code word is %s.", names[0], words[0]);
        expect_answer(t, words[0]);
    }
    if (!res) return -1;
    free(res);
    answer(t, a);
    return 0;
}

/* ------------------------------------------------------------------ 2: chains */
static const char *CHAIN_Q[] = {
    "what weekday is {C} days after {A}?", "which day of the week will it be {C} days after {A}?",
    "convert {D} miles to km and then multiply by {E}", "read {F}, it holds a number; what is that number times {E}?",
    "what weekday is {C} days before {A}?", "how many days are there from {A} to {B}, times {E}?",
    "how many hours are in {C} days? use the converter, then add {E}", "what date is {C} days after {A}, and what weekday is that?",
    "take the number in {F} and add {E} to it", "convert {D} kg to pounds and multiply the result by {E}",
};

static int gen_chain(task *t) {
    char a[11], b[11], c[16], d[16], e[16], q[256], ans[320];
    rand_date(&t->r, 2020, 2030, a);
    rand_date(&t->r, 2020, 2030, b);
    int days = rint_in(&t->r, 2, 300), k = rint_in(&t->r, 2, 12), dv = rint_in(&t->r, 2, 200);
    snprintf(c, sizeof c, "%d", days); snprintf(d, sizeof d, "%d", dv); snprintf(e, sizeof e, "%d", k);
    const char *fname = PICK(&t->r, FNAMES);
    const char *v[6] = {a, b, c, d, e, fname};
    subst(q, sizeof q, CHAIN_Q[t->base], v);
    strcpy(t->category, "chain");
    t->difficulty = 2;
    int base = t->base;
    const char *tools = base == 0 || base == 1 || base == 4 || base == 7 ? "dates" : base == 2 || base == 6 || base == 9 ? "units,calculator"
                      : base == 5 ? "dates,calculator" : "files,calculator";
    strcpy(t->tools, tools);
    k2c_toolbox_free(t->box);
    t->box = NULL;
    if (base == 3 || base == 8) {
        long num = rint_in(&t->r, 10, 9999);
        char content[64], *p;
        snprintf(t->workdir, sizeof t->workdir, "/tmp/k2c-synth-XXXXXX");
        if (!mkdtemp(t->workdir)) { t->workdir[0] = 0; return -1; }
        snprintf(content, sizeof content, "%ld\n", num);
        p = k2c_path_join(t->workdir, fname);
        int rc = p ? k2c_write_file_atomic(p, content, strlen(content)) : -1;
        free(p);
        if (rc) return -1;
        t->files = json_pack("{s:s}", fname, content);
    }
    k2c_toolbox_opts o = {.workdir = t->workdir[0] ? t->workdir : NULL};
    if (k2c_tool_groups_parse(tools, &o.groups) || !(t->box = k2c_toolbox_new(&o))) return -1;
    say_user(t, q);
    char *r1 = NULL, *r2 = NULL, expr[96];
    json_t *j = NULL;
    int rc = -1;
    if (base == 0 || base == 1 || base == 4 || base == 7) {
        r1 = call(t, "add_days", json_pack("{s:s,s:i}", "date", a, "days", base == 4 ? -days : days), NULL);
        j = r1 ? json_loads(r1, 0, NULL) : NULL;
        const char *date = json_string_value(json_object_get(j, "date"));
        if (!date) goto done;
        r2 = call(t, "weekday", json_pack("{s:s}", "date", date), NULL);
        json_t *w = r2 ? json_loads(r2, 0, NULL) : NULL;
        const char *wd = json_string_value(json_object_get(w, "weekday"));
        snprintf(ans, sizeof ans, "%d days %s %s is %s, a %s.", days, base == 4 ? "before" : "after", a, date, wd ? wd : "?");
        expect_answer(t, wd ? wd : "?");
        if (base == 7) expect_answer(t, date);
        json_decref(w);
        const char *names[2] = {"add_days", "weekday"};
        expect_calls(t, names, 2);
    } else {
        const char *first = base == 5 ? "days_between" : base == 3 || base == 8 ? "read_file" : "convert_units";
        if (base == 5) r1 = call(t, first, json_pack("{s:s,s:s}", "start", a, "end", b), NULL);
        else if (base == 3 || base == 8) r1 = call(t, first, json_pack("{s:s}", "path", fname), NULL);
        else r1 = call(t, first, json_pack("{s:i,s:s,s:s}", "value", base == 6 ? days : dv, "from", base == 2 ? "mi" : base == 6 ? "day" : "kg",
                                           "to", base == 2 ? "km" : base == 6 ? "h" : "lb"), NULL);
        if (!r1) goto done;
        j = json_loads(r1, 0, NULL);
        double x = base == 5 ? (double)json_integer_value(json_object_get(j, "days"))
                 : base == 3 || base == 8 ? strtod(r1, NULL) : json_number_value(json_object_get(j, "result"));
        char xs[48];
        snprintf(xs, sizeof xs, "%.10g", x);
        snprintf(expr, sizeof expr, base == 6 || base == 8 ? "%s+%d" : "%s*%d", xs, k);
        r2 = call(t, "calculator", json_pack("{s:s}", "expression", expr), NULL);
        if (!r2) goto done;
        double y = strtod(r2, NULL);
        char ys[48];
        fmt_num(ys, sizeof ys, y);
        snprintf(ans, sizeof ans, "That is %s.", ys);
        expect_number(t, y, 0.01 + 1e-4 * fabs(y));
        const char *names[2] = {first, "calculator"};
        expect_calls(t, names, 2);
    }
    answer(t, ans);
    rc = 0;
done:
    json_decref(j);
    free(r1); free(r2);
    return rc;
}

/* ------------------------------------------------------------------ 2: distractors */
static const char *DISTRACT[] = {
    "My cat weighs 4 kg and I was born in 1990. Anyway: {A}", "{A} (ignore that I'm writing from room 214)",
    "I have 3 meetings today and 12 emails to answer. {A}", "Not about the 25 km run we did on 2026-03-01: {A}",
    "My phone number ends in 4471, but that's irrelevant. {A}",
    "Flight HAN-DAD was 1,200,000 VND last week, whatever. {A}", "Two questions ago I asked about 99 pounds; now {A}",
    "It's 31 degrees here and I'm 1.8 m tall. {A}", "Ignore the number 77. {A}", "Between us, 2+2 is 4. {A}",
};

static int gen_distractor(task *t, int train) {
    /* the inner question: a calculator template of the same split */
    int inner;
    do inner = (int)(rnext(&t->r) % NCALC); while ((inner % 5 == 4) == train);
    char q[256], e[128], full[512];
    calc_question(t, inner, q, sizeof q, e, sizeof e);
    const char *v[6] = {q};
    subst(full, sizeof full, DISTRACT[t->base], v);
    int keep_frame = t->frame;
    t->frame = 0;                                /* the distractor is the frame */
    strcpy(t->tools, "calculator,dates,units");
    k2c_toolbox_free(t->box);
    k2c_toolbox_opts o = {0};
    if (k2c_tool_groups_parse(t->tools, &o.groups) || !(t->box = k2c_toolbox_new(&o))) return -1;
    say_user(t, full);
    t->frame = keep_frame;
    strcpy(t->category, "distractor");
    t->difficulty = 2;
    char *res = call(t, "calculator", json_pack("{s:s}", "expression", e), NULL);
    if (!res) return -1;
    char a[256];
    snprintf(a, sizeof a, "%s = %s.", e, res);
    answer(t, a);
    expect_number(t, strtod(res, NULL), 1e-6 * fabs(strtod(res, NULL)) + 1e-6);
    const char *names[1] = {"calculator"};
    expect_calls(t, names, 1);
    free(res);
    return 0;
}

/* ------------------------------------------------------------------ 2-4: travel */
static const char *CODES[5] = {"HAN", "SGN", "DAD", "CXR", "PQC"};
static const char *CITIES[5] = {"Hanoi", "Ho Chi Minh City", "Da Nang", "Nha Trang", "Phu Quoc"};

static const char *TRAVEL_Q[] = {
    /* 0-4 search (difficulty 2) */
    "what's the cheapest flight from {A} to {B} on {C}?", "find me the lowest fare from {A} to {B} on {C}",
    "which flight from {A} to {B} on {C} costs the least?", "what is the earliest flight from {A} to {B} on {C}?",
    "cheapest {A}-{B} flight on {C}?",
    /* 5-9 book a flight (3) */
    "book the cheapest flight from {A} to {B} on {C} for {D} passengers", "please get {D} seats on the cheapest {A} to {B} flight on {C}",
    "book {D} tickets from {A} to {B} on {C}, the cheapest option under {E} VND", "reserve the earliest flight from {A} to {B} on {C} for {D}",
    "I need {D} seats from {A} to {B} on {C}; take the cheapest one",
    /* 10-14 book a hotel (3) */
    "book a {D}-star hotel with a sea view in {F} for {A} nights", "find the cheapest {D}-star hotel in {F} and book it for {A} nights",
    "reserve {A} nights at a {D}-star hotel in {F} under {E} VND per night", "I want a sea-view hotel in {F}, {D} stars, {A} nights. book the cheapest",
    "book {A} nights in {F}: {D} stars, sea view, cheapest",
    /* 15-19 the trip (4) */
    "My partner and I are flying from {A} to {B} on {C}. Book the cheapest flight for 2 and a {D}-star hotel with a sea view for {E} nights.",
    "plan our trip: {A} to {B} on {C} for two people, cheapest flight, plus {E} nights in a {D}-star sea-view hotel",
    "book a couple's trip to {F}: the cheapest flight from {A} on {C} for 2, then a {D}-star hotel with a sea view for {E} nights",
    "we are two. fly {A} -> {B} on {C} (cheapest) and book {E} nights at a {D}-star hotel with a sea view",
    "two travellers, {A} to {B} on {C}: cheapest flight and a {D}-star sea-view hotel for {E} nights, please",
    /* 20-24 retry: the first booking fails (3) */
    "book {D} seats on the earliest flight from {A} to {B} on {C}; if it's full, take the next one",
    "get {D} seats on the first flight from {A} to {B} on {C}, or the next one with room",
    "book {D} seats from {A} to {B} on {C} on the earliest departure that still has room (try the first one first)",
    "{D} of us need the earliest {A}-{B} flight on {C}; if there's not enough room, book the next one",
    "{D} passengers, {A} to {B}, {C}: first flight of the day please, otherwise the next",
};

/* index into flights of the cheapest (by price, then departure) or the earliest with seats >= need */
static int choose_flight(json_t *fl, int cheapest, int need) {
    int best = -1;
    size_t i;
    json_t *f;
    json_array_foreach(fl, i, f) {
        if (json_integer_value(json_object_get(f, "seats_left")) < need) continue;
        if (best < 0) { best = (int)i; continue; }
        if (cheapest && json_integer_value(json_object_get(f, "price")) < json_integer_value(json_object_get(json_array_get(fl, (size_t)best), "price")))
            best = (int)i;
    }
    return best;
}

static int book_flight_ref(task *t, const char *from, const char *to, const char *date, int pax, long maxp, int cheapest, char *out, size_t cap) {
    json_t *args = json_pack("{s:s,s:s,s:s}", "from", from, "to", to, "date", date);
    if (maxp > 0) json_object_set_new(args, "max_price", json_integer(maxp));
    char *res = call(t, "search_flights", args, NULL);
    json_t *j = res ? json_loads(res, 0, NULL) : NULL, *fl = json_object_get(j, "flights");
    int k = choose_flight(fl, cheapest, pax), rc = -1;
    if (k < 0) goto done;
    json_t *f = json_array_get(fl, (size_t)k);
    const char *id = json_string_value(json_object_get(f, "id"));
    char *b = call(t, "book_flight", json_pack("{s:s,s:i}", "flight_id", id, "passengers", pax), NULL);
    json_t *bj = b ? json_loads(b, 0, NULL) : NULL;
    char tot[32];
    fmt_int(tot, sizeof tot, (long)json_integer_value(json_object_get(bj, "total_price")), 1);
    snprintf(out, cap, "flight %s (%s, departs %s) for %d: %s VND, booking %s", id, date, json_string_value(json_object_get(f, "depart")), pax, tot,
             json_string_value(json_object_get(bj, "booking_id")) ? json_string_value(json_object_get(bj, "booking_id")) : "?");
    expect_booking(t, "flight", id, pax);
    json_decref(bj);
    free(b);
    rc = 0;
done:
    json_decref(j);
    free(res);
    return rc;
}

static int book_hotel_ref(task *t, int city, int stars, int sea, long maxp, int nights, char *out, size_t cap) {
    json_t *args = json_pack("{s:s,s:i}", "city", CITIES[city], "stars", stars);
    if (sea) json_object_set_new(args, "sea_view", json_true());
    if (maxp > 0) json_object_set_new(args, "max_price", json_integer(maxp));
    char *res = call(t, "search_hotels", args, NULL);
    json_t *j = res ? json_loads(res, 0, NULL) : NULL, *hs = json_object_get(j, "hotels");
    int best = -1, rc = -1;
    size_t i;
    json_t *h;
    json_array_foreach(hs, i, h)
        if (best < 0 || json_integer_value(json_object_get(h, "price_per_night")) <
                        json_integer_value(json_object_get(json_array_get(hs, (size_t)best), "price_per_night"))) best = (int)i;
    if (best < 0) goto done;
    h = json_array_get(hs, (size_t)best);
    const char *id = json_string_value(json_object_get(h, "id"));
    char *b = call(t, "book_hotel", json_pack("{s:s,s:i}", "hotel_id", id, "nights", nights), NULL);
    json_t *bj = b ? json_loads(b, 0, NULL) : NULL;
    char tot[32];
    fmt_int(tot, sizeof tot, (long)json_integer_value(json_object_get(bj, "total_price")), 1);
    snprintf(out, cap, "%s (%s) for %d nights: %s VND, booking %s", json_string_value(json_object_get(h, "name")), id, nights, tot,
             json_string_value(json_object_get(bj, "booking_id")) ? json_string_value(json_object_get(bj, "booking_id")) : "?");
    expect_booking(t, "hotel", id, nights);
    json_decref(bj);
    free(b);
    rc = 0;
done:
    json_decref(j);
    free(res);
    return rc;
}

/* Whether a hotel search has a match, on a scratch environment (the task's own stays untouched). */
static int hotel_exists(uint64_t seed, int city, int stars, int sea, long maxp) {
    k2c_travel *tr = k2c_travel_new(seed);
    char args[160];
    snprintf(args, sizeof args, "{\"city\":\"%s\",\"stars\":%d%s,\"max_price\":%ld}", CITIES[city], stars, sea ? ",\"sea_view\":true" : "", maxp > 0 ? maxp : 1L << 40);
    char *r = tr ? k2c_travel_call(tr, "search_hotels", args) : NULL;
    int ok = r && strstr(r, "\"id\"") != NULL;
    free(r);
    k2c_travel_free(tr);
    return ok;
}

static int gen_travel(task *t, int kind) {       /* kind 0 search, 1 book, 2 hotel, 3 trip, 4 retry */
    static const char *cats[5] = {"travel_search", "travel_book", "hotel_book", "trip", "retry"};
    static const int diff[5] = {2, 3, 3, 4, 3};
    strcpy(t->category, cats[kind]);
    strcpy(t->tools, "travel");
    t->difficulty = diff[kind];
    int fa = rint_in(&t->r, 0, 4), fb;
    do fb = kind == 3 ? rint_in(&t->r, 2, 4) : rint_in(&t->r, 0, 4); while (fb == fa);
    char date[11];
    rand_date(&t->r, 2026, 2027, date);
    int pax = rint_in(&t->r, 1, 4), nights = rint_in(&t->r, 1, 7), stars = rint_in(&t->r, 3, 5), city = rint_in(&t->r, 0, 4);
    int b5 = t->base % 5, sea = kind == 3 || (kind == 2 && (b5 == 0 || b5 == 3 || b5 == 4));   /* only where the words ask */
    if (kind == 3 || sea) city = fb >= 2 ? fb : rint_in(&t->r, 2, 4);
    if (kind == 3) stars = 4;
    long maxp = 0;
    if (kind == 4) {
        /* a route and day whose first flight has fewer seats than asked while a later one has enough */
        k2c_travel *tr = k2c_travel_new(2026);
        int found = 0;
        for (int tries = 0; tr && tries < 400 && !found; tries++) {
            char args[128];
            snprintf(args, sizeof args, "{\"from\":\"%s\",\"to\":\"%s\",\"date\":\"%s\"}", CODES[fa], CODES[fb], date);
            char *r = k2c_travel_call(tr, "search_flights", args);
            json_t *j = r ? json_loads(r, 0, NULL) : NULL, *fl = json_object_get(j, "flights");
            long s0 = json_integer_value(json_object_get(json_array_get(fl, 0), "seats_left"));
            for (int need = (int)s0 + 1; need <= 6 && !found; need++)
                if (choose_flight(fl, 0, need) > 0) { pax = need; found = 1; }
            json_decref(j);
            free(r);
            if (!found) rand_date(&t->r, 2026, 2027, date);
        }
        k2c_travel_free(tr);
        if (!found) return -1;
    }
    if (kind == 2) {
        for (int tries = 0; tries < 20 && !hotel_exists(2026, city, stars, sea, 0); tries++) {
            stars = rint_in(&t->r, 2, 5);
            city = sea ? rint_in(&t->r, 2, 4) : rint_in(&t->r, 0, 4);
        }
        if (!hotel_exists(2026, city, stars, sea, 0)) return -1;
        if (t->base == 12) maxp = 3000000 + 500000L * rint_in(&t->r, 0, 6);
        if (maxp && !hotel_exists(2026, city, stars, sea, maxp)) maxp = 0;
    }
    if (kind == 3 && !hotel_exists(2026, city, stars, 1, 0)) return -1;
    if (kind == 1 && t->base == 7) maxp = 1000000 + 250000L * rint_in(&t->r, 0, 8);
    char sa[32], sb[32], sd[16], se[32], q[512];
    int show_city = rnext(&t->r) % 2;
    snprintf(sa, sizeof sa, "%s", show_city ? CITIES[fa] : CODES[fa]);
    snprintf(sb, sizeof sb, "%s", show_city ? CITIES[fb] : CODES[fb]);
    snprintf(sd, sizeof sd, "%d", kind == 2 ? stars : kind == 3 ? stars : pax);
    if (kind == 2 || kind == 3) { char tmp[16]; snprintf(tmp, sizeof tmp, "%d", nights); if (kind == 2) snprintf(sa, sizeof sa, "%s", tmp); }
    if (maxp) fmt_int(se, sizeof se, maxp, t->numstyle);
    else snprintf(se, sizeof se, "%d", nights);
    const char *v[6] = {sa, sb, date, sd, se, CITIES[kind == 3 ? fb : city]};
    subst(q, sizeof q, TRAVEL_Q[kind * 5 + t->base % 5], v);
    say_user(t, q);
    char r1[256] = "", r2[256] = "", ans[640];
    int rc = 0;
    if (kind == 0) {
        char *res = call(t, "search_flights", json_pack("{s:s,s:s,s:s}", "from", CODES[fa], "to", CODES[fb], "date", date), NULL);
        json_t *j = res ? json_loads(res, 0, NULL) : NULL, *fl = json_object_get(j, "flights");
        int k = choose_flight(fl, t->base % 5 != 3, 1);
        json_t *f = json_array_get(fl, k < 0 ? 0 : (size_t)k);
        const char *id = json_string_value(json_object_get(f, "id"));
        char price[32];
        fmt_int(price, sizeof price, (long)json_integer_value(json_object_get(f, "price")), 1);
        snprintf(ans, sizeof ans, "The %s flight is %s, departing at %s, for %s VND.", t->base % 5 == 3 ? "earliest" : "cheapest",
                 id ? id : "?", json_string_value(json_object_get(f, "depart")) ? json_string_value(json_object_get(f, "depart")) : "?", price);
        if (id) expect_answer(t, id);
        else rc = -1;
        const char *names[1] = {"search_flights"};
        expect_calls(t, names, 1);
        json_decref(j);
        free(res);
    } else if (kind == 1) {
        rc = book_flight_ref(t, CODES[fa], CODES[fb], date, pax, maxp, t->base % 5 != 3, r1, sizeof r1);
        snprintf(ans, sizeof ans, "Booked %s.", r1);
    } else if (kind == 2) {
        rc = book_hotel_ref(t, city, stars, sea, maxp, nights, r1, sizeof r1);
        snprintf(ans, sizeof ans, "Booked %s.", r1);
    } else if (kind == 3) {
        rc = book_flight_ref(t, CODES[fa], CODES[fb], date, 2, 0, 1, r1, sizeof r1);
        if (!rc) rc = book_hotel_ref(t, city, stars, 1, 0, nights, r2, sizeof r2);
        snprintf(ans, sizeof ans, "Done: %s; and %s.", r1, r2);
    } else {
        /* the earliest first: it fails (too few seats), the error says so, then the next with room */
        char *res = call(t, "search_flights", json_pack("{s:s,s:s,s:s}", "from", CODES[fa], "to", CODES[fb], "date", date), NULL);
        json_t *j = res ? json_loads(res, 0, NULL) : NULL, *fl = json_object_get(j, "flights");
        const char *first = json_string_value(json_object_get(json_array_get(fl, 0), "id"));
        int failed = 0, k = choose_flight(fl, 0, pax);
        char *b1 = first ? call(t, "book_flight", json_pack("{s:s,s:i}", "flight_id", first, "passengers", pax), &failed) : NULL;
        const char *next = k > 0 ? json_string_value(json_object_get(json_array_get(fl, (size_t)k), "id")) : NULL;
        if (!failed || !next) rc = -1;
        else {
            char *b2 = call(t, "book_flight", json_pack("{s:s,s:i}", "flight_id", next, "passengers", pax), NULL);
            snprintf(ans, sizeof ans, "The first flight (%s) did not have %d seats, so I booked %s instead.", first, pax, next);
            expect_booking(t, "flight", next, pax);
            free(b2);
        }
        free(b1);
        json_decref(j);
        free(res);
    }
    if (rc) return -1;
    answer(t, ans);
    return 0;
}

/* ------------------------------------------------------------------ the file */
static const struct { const char *name; int nbase; } CATS[] = {
    {"calculator", NCALC}, {"units", 10}, {"dates", 15}, {"files", 10}, {"chain", 10}, {"distractor", 10},
    {"travel_search", 5}, {"travel_book", 5}, {"hotel_book", 5}, {"trip", 5}, {"retry", 5},
};
#define NCATS (int)(sizeof CATS / sizeof CATS[0])

static int heldout_template(int base, int frame) { return base % 5 == 4 || frame >= 6; }

static void task_free(task *t) {
    k2c_toolbox_free(t->box);
    json_decref(t->files);
    json_decref(t->msgs);
    json_decref(t->verify);
    if (t->workdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->workdir);
        if (system(cmd) != 0) k2c_log("synth: could not remove %s", t->workdir);
    }
}

static int gen_one(task *t, int cat, int train) {
    switch (cat) {
    case 0: return gen_calc(t);
    case 1: return gen_units(t);
    case 2: return gen_dates(t);
    case 3: return gen_files(t);
    case 4: return gen_chain(t);
    case 5: return gen_distractor(t, train);
    default: return gen_travel(t, cat - 6);
    }
}

int k2c_synth_tasks(const k2c_synth_opts *o, const char *path) {
    const char *split = o->split ? o->split : "train";
    if (strcmp(split, "train") && strcmp(split, "heldout") && strcmp(split, "all")) { k2c_seterr("synth: split is train, heldout or all"); return -1; }
    int use[NCATS], nuse = 0;
    for (int c = 0; c < NCATS; c++) {
        use[c] = !o->categories;
        for (const char *p = o->categories; p && *p;) {
            size_t l = strcspn(p, ",");
            if (l == strlen(CATS[c].name) && !strncmp(p, CATS[c].name, l)) use[c] = 1;
            p += l + (p[l] == ',');
        }
        nuse += use[c];
    }
    if (!nuse) { k2c_seterr("synth: no known category in '%s'", o->categories); return -1; }
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) { k2c_seterr("out of memory"); return -1; }
    rng r = {o->seed * 0x9E3779B97F4A7C15ull + 17};
    int made = 0, failures = 0, rc = -1;
    for (long i = 0; made < o->n; i++) {
        if (failures > 10 * (o->n + 10)) { k2c_seterr("synth: could not build tasks (%s)", k2c_errmsg()); goto done; }
        int cat = (int)(i % NCATS);
        if (!use[cat]) continue;
        task t;
        memset(&t, 0, sizeof t);
        t.r.s = rnext(&r);
        int train = !strcmp(split, "train") ? 1 : !strcmp(split, "heldout") ? 0 : (int)(rnext(&t.r) % 2);
        /* a template of the split: (base, frame) drawn until it belongs */
        do { t.base = (int)(rnext(&t.r) % (uint64_t)CATS[cat].nbase); t.frame = (int)(rnext(&t.r) % 8); }
        while (heldout_template(t.base, t.frame) == train);
        t.casing = (int)(rnext(&t.r) % 6);
        t.casing = t.casing < 4 ? 0 : t.casing - 3;         /* mostly as written; lower and UPPER case too */
        t.numstyle = (int)(rnext(&t.r) % 3);
        t.msgs = json_array();
        t.verify = json_object();
        unsigned g;
        k2c_toolbox_opts to = {0};
        int ok = k2c_tool_groups_parse(cat == 0 || cat == 5 ? "calculator" : cat == 1 ? "units" : cat == 2 ? "dates" : cat >= 6 ? "travel" : "none", &g) == 0;
        to.groups = g;
        if (ok && !(t.box = k2c_toolbox_new(&to))) ok = 0;
        if (ok && gen_one(&t, cat, train) == 0) {
            char id[64], tpl[64];
            snprintf(id, sizeof id, "%s-%s-%05d", CATS[cat].name, train ? "train" : "heldout", made);
            snprintf(tpl, sizeof tpl, "%s.%d.%d", CATS[cat].name, t.base, t.frame);
            json_t *line = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:i,s:O,s:O}", "id", id, "category", t.category, "difficulty", t.difficulty,
                                     "template", tpl, "split", train ? "train" : "heldout", "tools", t.tools, "task", t.text,
                                     "budget", 96 * (t.ncalls + 1) + 64, "verify", t.verify, "reference", t.msgs);
            if (line && t.files) json_object_set(line, "files", t.files);
            char *s = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            json_decref(line);
            if (s) { fprintf(out, "%s\n", s); made++; }
            free(s);
        } else { failures++; if (getenv("K2C_SYNTH_DEBUG")) k2c_log("synth: %s %d.%d: %s", CATS[cat].name, t.base, t.frame, k2c_errmsg()); }
        task_free(&t);
    }
    fclose(out);
    out = NULL;
    rc = k2c_write_file_atomic(path, buf, len);
done:
    if (out) fclose(out);
    free(buf);
    return rc;
}
