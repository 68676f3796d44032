/* JSON Schema grammar: accepts valid compact JSON, rejects what the schema forbids, and every prefix
 * reached by random allowed bytes closes (k2c_gram_close) into JSON that parses. */
#include "check.h"
#include "text/text.h"

#include <jansson.h>
#include <string.h>

static const char *SCHEMA =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"maxLength\":8},"
    "\"n\":{\"type\":\"integer\"},"
    "\"x\":{\"type\":\"number\"},"
    "\"ok\":{\"type\":\"boolean\"},"
    "\"unit\":{\"enum\":[\"c\",\"f\",1,10,null]},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1,\"maxItems\":3},"
    "\"inner\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]}},\"required\":[\"a\"]},"
    "\"free\":{\"type\":\"object\"}},"
    "\"required\":[\"name\",\"tags\",\"inner\"]}";

static int accepts(const k2c_schema *s, const char *text) {
    k2c_gram *g = k2c_gram_new(s);
    int ok = k2c_gram_feed(g, text, strlen(text)) == 0 && k2c_gram_accepting(g);
    k2c_gram_free(g);
    return ok;
}

static void test_accept_reject(void) {
    k2c_schema *s = k2c_schema_compile(SCHEMA, "test");
    EXPECT(s, "compile: %s", k2c_errmsg());
    if (!s) return;
    EXPECT(accepts(s, "{\"name\":\"a\\\"b\\u00e9\",\"tags\":[\"x\"],\"inner\":{\"a\":null}}"), "basic");
    EXPECT(accepts(s, "{\"tags\":[\"x\",\"y\"],\"n\":-12,\"x\":1.5e+3,\"unit\":10,\"inner\":{\"a\":\"q\"},\"name\":\"\",\"free\":{\"k\":[1,{\"z\":true}]}}"), "order");
    EXPECT(accepts(s, "{\"name\":\"caf\xc3\xa9\",\"tags\":[\"x\"],\"inner\":{\"a\":null},\"unit\":1}"), "utf8 + enum prefix");
    EXPECT(!accepts(s, "{\"name\":\"a\",\"inner\":{\"a\":null}}"), "missing required");
    EXPECT(!accepts(s, "{\"name\":\"a\",\"tags\":[],\"inner\":{\"a\":null}}"), "minItems");
    EXPECT(!accepts(s, "{\"name\":\"123456789\",\"tags\":[\"x\"],\"inner\":{\"a\":null}}"), "maxLength");
    EXPECT(!accepts(s, "{\"name\":\"a\",\"name\":\"b\",\"tags\":[\"x\"],\"inner\":{\"a\":null}}"), "duplicate key");
    EXPECT(!accepts(s, "{\"bogus\":1}"), "undeclared key");
    EXPECT(!accepts(s, "{\"n\":1.5}"), "integer");
    EXPECT(!accepts(s, "{\"unit\":\"k\"}"), "enum");
    EXPECT(!accepts(s, "{\"name\":\"\\ud800\"}"), "lone surrogate");
    EXPECT(!accepts(s, "{\"name\":\"\xc0\xaf\"}"), "overlong utf8");
    EXPECT(!accepts(s, "{\"name\":\"a\nb\"}"), "raw control char");
    EXPECT(!accepts(s, "{ \"name\":\"a\"}"), "whitespace");
    EXPECT(!accepts(s, "{\"n\":01}"), "leading zero");
    k2c_schema_free(s);
    k2c_schema *b = k2c_schema_compile("{\"type\":\"object\",\"properties\":{\"k\":{\"type\":\"integer\",\"minimum\":5,\"maximum\":120},"
                                       "\"x\":{\"type\":\"number\",\"exclusiveMinimum\":-3.5,\"maximum\":-1},\"e\":{\"type\":\"object\",\"additionalProperties\":false}}}", "bounds");
    EXPECT(b, "compile bounds: %s", k2c_errmsg());
    if (b) {
        EXPECT(accepts(b, "{\"k\":5}") && accepts(b, "{\"k\":120}") && accepts(b, "{\"k\":77}"), "in range");
        EXPECT(!accepts(b, "{\"k\":4}") && !accepts(b, "{\"k\":121}") && !accepts(b, "{\"k\":0}") && !accepts(b, "{\"k\":-7}"), "out of range");
        EXPECT(!accepts(b, "{\"k\":1000}"), "too many digits");
        EXPECT(accepts(b, "{\"x\":-3}") && accepts(b, "{\"x\":-1}") && !accepts(b, "{\"x\":-4}") && !accepts(b, "{\"x\":0}"), "negative range");
        EXPECT(accepts(b, "{\"e\":{}}") && !accepts(b, "{\"e\":{\"a\":1}}"), "closed object");
        k2c_schema_free(b);
    }
    /* the last four: patterns no string of the allowed lengths matches, or none at all (an empty class "[]"
     * on the only path); an answer could open the string and never close it (found by fuzz_grammar) */
    const char *bad[] = {"{\"type\":\"strin\"}", "[1]", "{\"enum\":[]}", "{\"type\":\"object\",\"required\":[1]}", "not json",
                         "{\"type\":\"string\",\"pattern\":\"^(foo|bar|baz)+$\",\"maxLength\":0}",
                         "{\"type\":\"string\",\"pattern\":\"^a{2,3}$\",\"minLength\":4}",
                         "{\"type\":\"string\",\"format\":\"uuid\",\"maxLength\":10}",
                         "{\"type\":\"string\",\"pattern\":\"^\\\\+1[]0[0-9]{6,12}$\"}"};
    for (int i = 0; i < 9; i++) {
        k2c_schema *b = k2c_schema_compile(bad[i], "bad");
        EXPECT(!b, "schema %s should fail", bad[i]);
        k2c_schema_free(b);
    }
    k2c_schema *okp = k2c_schema_compile("{\"type\":\"string\",\"pattern\":\"^(foo|bar)+$\",\"maxLength\":3}", "ok");
    EXPECT(okp && accepts(okp, "\"foo\"") && !accepts(okp, "\"foobar\""), "a pattern within maxLength compiles and holds");
    k2c_schema_free(okp);
}

/* Random walks: pick random allowed bytes, stop anywhere, close, parse. */
static void test_random_close(void) {
    const char *schemas[] = {SCHEMA, "{\"type\":\"array\",\"items\":{\"type\":\"number\"}}", "{}",
                             "{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"}},\"required\":[\"v\"]}",
                             "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":100,\"maximum\":250},"
                             "\"b\":{\"type\":\"array\",\"items\":{\"type\":\"number\",\"minimum\":-20,\"maximum\":-10}}},\"required\":[\"a\",\"b\"]}"};
    uint64_t rng = 42;
    int bad = 0, total = 0;
    for (int si = 0; si < 5; si++) {
        k2c_schema *s = k2c_schema_compile(schemas[si], "walk");
        EXPECT(s, "compile %d: %s", si, k2c_errmsg());
        if (!s) continue;
        k2c_gram *g = k2c_gram_new(s);
        for (int walk = 0; walk < 300; walk++) {
            k2c_gram_reset(g, s);
            char text[512 + 4096];
            size_t n = 0;
            int steps = (int)(k2c_rng_next(&rng) % 200);
            for (int st = 0; st < steps && !k2c_gram_done(g); st++) {
                uint8_t bm[32];
                k2c_gram_first_bytes(g, bm);
                int cand[256], nc = 0;
                for (int c = 0; c < 256; c++) if (bm[c >> 3] >> (c & 7) & 1) cand[nc++] = c;
                if (!nc) break;
                /* prefer closing brackets a little so walks also finish on their own */
                char c = (char)cand[k2c_rng_next(&rng) % nc];
                if (k2c_gram_feed(g, &c, 1) != 0) { bad++; break; }
                text[n++] = c;
            }
            size_t cl;
            char *close = k2c_gram_close(g, &cl);
            if (!close) { bad++; continue; }
            memcpy(text + n, close, cl);
            text[n + cl] = 0;
            free(close);
            json_error_t e;
            json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
            total++;
            if (!j) { bad++; if (bad < 5) printf("  unparsable: %s (%s)\n", text, e.text); }
            json_decref(j);
        }
        k2c_gram_free(g);
        k2c_schema_free(s);
    }
    EXPECT(bad == 0, "%d of %d closed walks failed", bad, total);
}


static k2c_schema *sc(const char *json) {
    k2c_schema *s = k2c_schema_compile(json, "t");
    EXPECT(s, "compile %s: %s", json, k2c_errmsg());
    return s;
}

/* Each keyword of point 1, accepted and refused exactly. */
static void test_keywords(void) {
    struct { const char *schema; const char *yes[6]; const char *no[6]; } c[] = {
        {"{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"k\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}},\"required\":[\"v\"]}},\"$ref\":\"#/$defs/n\"}",
         {"{\"v\":1}", "{\"v\":1,\"k\":[{\"v\":2,\"k\":[{\"v\":3}]}]}"}, {"{\"k\":[]}", "{\"v\":1,\"k\":[{}]}"}},
        {"{\"definitions\":{\"s\":{\"type\":\"string\",\"maxLength\":2}},\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/s\"}}",
         {"[\"ab\",\"\"]"}, {"[\"abc\"]", "[1]"}},
        {"{\"anyOf\":[{\"type\":\"integer\",\"minimum\":5},{\"type\":\"string\",\"pattern\":\"^x+$\"},{\"type\":\"null\"}]}",
         {"7", "\"xxx\"", "null"}, {"4", "\"xy\"", "true"}},
        {"{\"oneOf\":[{\"const\":\"a\"},{\"const\":\"b\"}]}", {"\"a\"", "\"b\""}, {"\"c\""}},
        {"{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"a\"]},{\"properties\":{\"b\":{\"const\":1}},\"required\":[\"b\"]}]}",
         {"{\"a\":\"\",\"b\":1}", "{\"b\":1,\"a\":\"q\"}"}, {"{\"a\":\"\"}", "{\"b\":1}", "{\"a\":\"\",\"b\":2}"}},
        {"{\"enum\":[[1,2],{\"k\":null},2.5,\"s\"]}", {"[1,2]", "{\"k\":null}", "2.5", "\"s\""}, {"[1]", "2", "{\"k\":1}"}},
        {"{\"type\":[\"string\",\"null\"],\"maxLength\":1}", {"null", "\"a\""}, {"\"ab\"", "1"}},
        {"{\"type\":\"string\",\"minLength\":2,\"maxLength\":2}", {"\"\xc3\xa9\xe4\xbd\xa0\"", "\"\\u00e9a\""}, {"\"\xc3\xa9\"", "\"abc\""}},
        {"{\"type\":\"string\",\"pattern\":\"^[a-c]{2}(-\\\\d+)?$\"}", {"\"ab\"", "\"cc-12\"", "\"\\u0061b\""}, {"\"abc\"", "\"ab-\"", "\"a\""}},
        {"{\"type\":\"string\",\"pattern\":\"b\"}", {"\"abc\"", "\"b\""}, {"\"ac\"", "\"\""}},
        {"{\"type\":\"string\",\"format\":\"date\"}", {"\"2024-02-28\"", "\"1999-12-31\""}, {"\"2024-02-30\"", "\"2024-13-01\"", "\"24-01-01\""}},
        {"{\"type\":\"string\",\"format\":\"uuid\"}", {"\"123e4567-e89b-12d3-a456-426614174000\""}, {"\"123e4567e89b12d3a456426614174000\""}},
        {"{\"type\":\"string\",\"format\":\"ipv4\"}", {"\"192.168.0.1\""}, {"\"256.1.1.1\"", "\"1.2.3\""}},
        {"{\"type\":\"integer\",\"multipleOf\":3,\"minimum\":-10,\"maximum\":10}", {"9", "-9", "0"}, {"10", "12", "4"}},
        {"{\"type\":\"number\",\"minimum\":0,\"exclusiveMaximum\":1}", {"0", "0.5", "0.999", "0.0001"}, {"1", "1.0", "-0.1", "0.5e1", "1.5"}},
        {"{\"type\":\"number\",\"exclusiveMinimum\":0.1,\"maximum\":0.2}", {"0.15", "0.2", "0.100001"}, {"0.1", "0.21", "0", "0.10"}},
        {"{\"type\":\"number\",\"minimum\":-90,\"maximum\":90}", {"48.8566", "-90", "90.0", "-12.5"}, {"90.01", "-91", "100"}},
        {"{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],\"items\":false}", {"[\"a\",1]", "[\"a\"]", "[]"}, {"[1]", "[\"a\",1,2]"}},
        {"{\"type\":\"array\",\"items\":{\"enum\":[\"x\",\"y\"]},\"uniqueItems\":true}", {"[\"x\",\"y\"]", "[\"y\"]"}, {"[\"x\",\"x\"]"}},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":{\"type\":\"boolean\"},\"minProperties\":1,\"maxProperties\":2}",
         {"{\"a\":1}", "{\"z\":true,\"a\":1}", "{\"q\":false}"}, {"{}", "{\"a\":true}", "{\"a\":1,\"b\":true,\"c\":false}"}},
        {"{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"},\"propertyNames\":{\"pattern\":\"^[a-z]+$\"}}", {"{\"ab\":1}"}, {"{\"A\":1}", "{\"\":1}"}},
        {"{\"type\":\"string\",\"nullable\":true}", {"null", "\"s\""}, {"1"}},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        k2c_schema *s = sc(c[i].schema);
        if (!s) continue;
        for (int k = 0; k < 6 && c[i].yes[k]; k++) EXPECT(accepts(s, c[i].yes[k]), "schema %zu should accept %s", i, c[i].yes[k]);
        for (int k = 0; k < 6 && c[i].no[k]; k++) EXPECT(!accepts(s, c[i].no[k]), "schema %zu should refuse %s", i, c[i].no[k]);
        k2c_schema_free(s);
    }
    /* what cannot be compiled names the keyword */
    struct { const char *schema, *msg; } bad[] = {
        {"{\"type\":\"string\",\"pattern\":\"(?=a)\"}", "t.pattern: look-around"},
        {"{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "t.pattern: back-references"},
        {"{\"properties\":{\"p\":{\"$ref\":\"other.json#/x\"}}}", "t.properties.p.$ref: only local"},
        {"{\"$ref\":\"#/$defs/missing\"}", "does not resolve"},
        {"{\"allOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "allOf: no type"},
        {"{\"$defs\":{\"a\":{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":\"#/$defs/a\"}},\"required\":[\"x\"]}},\"$ref\":\"#/$defs/a\"}", "no finite instance"},
        {"{\"type\":\"integer\",\"minimum\":3,\"maximum\":2}", "no integer"},
        /* found by fuzz_grammar: an object that opens and can never close */
        {"{\"type\":\"object\",\"properties\":{\"x\":{},\"y\":{},\"z\":{}},\"minProperties\":3,\"maxProperties\":2}", "t: maxProperties < minProperties"},
        {"{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"},\"minProperties\":2,\"maxProperties\":1}", "t: maxProperties < minProperties"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        k2c_schema *s = k2c_schema_compile(bad[i].schema, "t");
        EXPECT(!s && strstr(k2c_errmsg(), bad[i].msg), "%s: got '%s', want '%s'", bad[i].schema, s ? "(compiled)" : k2c_errmsg(), bad[i].msg);
        k2c_schema_free(s);
    }
    /* not enforced exactly: a warning naming the path */
    k2c_schema *w = sc("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"format\":\"color\"}},\"not\":{}}");
    EXPECT(w && k2c_schema_warnings(w) && strstr(k2c_schema_warnings(w), "t.properties.a: format 'color'") &&
           strstr(k2c_schema_warnings(w), "t: keyword 'not'"), "warnings: %s", w ? k2c_schema_warnings(w) : "");
    k2c_schema_free(w);
    k2c_schema *nw = sc("{\"type\":\"object\",\"title\":\"x\",\"description\":\"d\",\"$schema\":\"s\",\"properties\":{\"a\":{\"default\":1}}}");
    EXPECT(nw && !k2c_schema_warnings(nw), "annotations warned: %s", nw ? k2c_schema_warnings(nw) : "");
    k2c_schema_free(nw);
    /* the minimal close of a deep recursive prefix still fits (depth reserve) */
    k2c_schema *r = sc("{\"$defs\":{\"j\":{\"anyOf\":[{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/j\"}},{\"type\":\"null\"}]}},\"$ref\":\"#/$defs/j\"}");
    if (r) {
        k2c_gram *g = k2c_gram_new(r);
        int fed = 0;
        for (int i = 0; i < 200; i++) { k2c_gram *t = malloc(k2c_gram_size()); k2c_gram_copy(t, g); if (k2c_gram_feed(t, "[", 1) == 0) { k2c_gram_copy(g, t); fed++; } free(t); }
        size_t cl;
        char *close = k2c_gram_close(g, &cl);
        EXPECT(fed > 10 && fed <= 64 && close && cl == (size_t)fed, "depth %d, close %s", fed, close ? close : k2c_errmsg());
        free(close);
        k2c_gram_free(g);
        k2c_schema_free(r);
    }
}

/* One random walk: random allowed bytes (mostly ASCII, so walks reach deep), stopped after a random
 * number of steps, then closed. The text, NUL-terminated, into buf; 0 or -1 (a walk that broke). */
static int walk(const k2c_schema *s, k2c_gram *g, uint64_t *rng, char *buf, size_t cap, int maxsteps) {
    k2c_gram_reset(g, s);
    size_t n = 0;
    int steps = (int)(k2c_rng_next(rng) % (uint64_t)(maxsteps + 1));
    for (int st = 0; st < steps && !k2c_gram_done(g) && n + 1 < cap / 2; st++) {
        uint8_t bm[32];
        k2c_gram_first_bytes(g, bm);
        int cand[256], nc = 0, ascii[256], na = 0;
        for (int c = 0; c < 256; c++)
            if (bm[c >> 3] >> (c & 7) & 1) { cand[nc++] = c; if (c >= 0x20 && c < 0x7f) ascii[na++] = c; }
        if (!nc && k2c_gram_accepting(g)) break;   /* a top-level number at its digit limit */
        if (!nc) { if (getenv("WALK_DEBUG")) fprintf(stderr, "no byte after '%.*s'\n", (int)n, buf); return -1; }
        int pickascii = na && k2c_rng_next(rng) % 10 < 8;
        char c = (char)(pickascii ? ascii[k2c_rng_next(rng) % (uint64_t)na] : cand[k2c_rng_next(rng) % (uint64_t)nc]);
        if (k2c_gram_feed(g, &c, 1) != 0) return -1;
        buf[n++] = c;
    }
    size_t cl;
    char *close = k2c_gram_close(g, &cl);
    if (!close || n + cl + 1 > cap) { if (getenv("WALK_DEBUG")) fprintf(stderr, "no close after '%.*s': %s\n", (int)n, buf, k2c_errmsg()); free(close); return -1; }
    memcpy(buf + n, close, cl);
    buf[n + cl] = 0;
    free(close);
    /* the closed text must be accepted as a whole by a fresh matcher */
    k2c_gram_reset(g, s);
    if (k2c_gram_feed(g, buf, n + cl) != 0 || !k2c_gram_accepting(g)) {
        if (getenv("WALK_DEBUG")) fprintf(stderr, "closed text refused: '%s' (close was %zu bytes)\n", buf, cl);
        return -1;
    }
    return 0;
}

/* --walk FILE N SEED: for each {"name", "schema"} of FILE, N closed random walks as JSON lines
 * {"name": ..., "text": ...} (or {"name": ..., "error": ...}), for an independent validator. */
static int walk_main(const char *file, int nwalks, uint64_t seed) {
    json_error_t e;
    json_t *all = json_load_file(file, 0, &e);
    if (!json_is_array(all)) { fprintf(stderr, "%s: %s\n", file, e.text); return 2; }
    size_t i; json_t *it;
    static char buf[1 << 17];
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
    json_array_foreach(all, i, it) {
        const char *name = json_string_value(json_object_get(it, "name"));
        k2c_schema *s = k2c_schema_compile_json(json_object_get(it, "schema"), name ? name : "schema");
        json_t *line = json_pack("{s:s}", "name", name ? name : "?");
        if (!s) {
            json_object_set_new(line, "error", json_string(k2c_errmsg()));
            char *t = json_dumps(line, JSON_COMPACT);
            puts(t); free(t); json_decref(line);
            continue;
        }
        if (k2c_schema_warnings(s)) json_object_set_new(line, "warnings", json_string(k2c_schema_warnings(s)));
        k2c_gram *g = k2c_gram_new(s);
        for (int w = 0; w < nwalks; w++) {
            int rc = walk(s, g, &rng, buf, sizeof buf, 400);
            if (rc) json_object_set_new(line, "text", json_null());
            else json_object_set_new(line, "text", json_string(buf));
            char *t = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
            puts(t); free(t);
        }
        json_decref(line);
        k2c_gram_free(g);
        k2c_schema_free(s);
    }
    json_decref(all);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--walk")) return walk_main(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
    run_test("grammar_accept_reject", test_accept_reject);
    run_test("grammar_keywords", test_keywords);
    run_test("grammar_random_close", test_random_close);
    return check_exit();
}
