/* Agent built-ins: the calculator (arithmetic only, errors not crashes) and the confined file tools
 * (no absolute paths, no "..", no symbolic links followed anywhere in a path, atomic writes). */
#include "check.h"
#include "serve/serve.h"

#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_calculator(void) {
    struct { const char *e; double v; } ok[] = {
        {"1+2*3", 7}, {"(1+2)*3", 9}, {"2^3^2", 512}, {"2**10", 1024}, {"-3 + +4", 1}, {"10 % 4", 2},
        {"sqrt(16) + abs(-2)", 6}, {"1e3 / 8", 125}, {"floor(2.7)+ceil(2.1)", 5}, {"-(2)^2", -4},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double v = 0;
        int rc = k2c_calc_eval(ok[i].e, &v);
        EXPECT(rc == 0 && fabs(v - ok[i].v) < 1e-9, "%s = %g (rc %d, %s)", ok[i].e, v, rc, k2c_errmsg());
    }
    const char *bad[] = {"", "1/0", "2+", "system(\"ls\")", "import os", "((((1)", "1 2", "pi(", "x", "sqrt(-1)", "1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v;
        EXPECT(k2c_calc_eval(bad[i], &v) != 0, "'%s' should fail", bad[i]);
    }
    char deep[400];
    memset(deep, '(', 200); deep[200] = '1'; memset(deep + 201, ')', 198); deep[399] = 0;
    double v;
    EXPECT(k2c_calc_eval(deep, &v) != 0, "deep nesting should fail, not overflow the stack");
}

static char *tool(const char *wd, const char *name, const char *args, int *err) {
    return k2c_builtin_tool(wd, name, args, err);
}

static void test_confinement(void) {
    char root[] = "/tmp/k2c-agent-XXXXXX";
    EXPECT(mkdtemp(root) != NULL, "mkdtemp");
    char wd[128], outside[128], p[256];
    snprintf(wd, sizeof wd, "%s/wd", root);
    snprintf(outside, sizeof outside, "%s/secret.txt", root);
    mkdir(wd, 0755);
    snprintf(p, sizeof p, "%s/sub", wd); mkdir(p, 0755);
    k2c_write_file_atomic(outside, "SECRET", 6);
    snprintf(p, sizeof p, "%s/sub/a.txt", wd); k2c_write_file_atomic(p, "hello", 5);
    snprintf(p, sizeof p, "%s/link", wd); EXPECT(symlink(outside, p) == 0, "symlink");
    snprintf(p, sizeof p, "%s/dirlink", wd); EXPECT(symlink(root, p) == 0, "symlink");
    int err;
    char *r = tool(wd, "read_file", "{\"path\":\"sub/a.txt\"}", &err);
    EXPECT(r && !err && !strcmp(r, "hello"), "read inside: %s", r ? r : k2c_errmsg());
    free(r);
    r = tool(wd, "read_file", "{\"path\":\"./sub//a.txt\"}", &err);
    EXPECT(r && !err, "read with ./ and //");
    free(r);
    const char *escapes[] = {"{\"path\":\"../secret.txt\"}", "{\"path\":\"sub/../../secret.txt\"}", "{\"path\":\"link\"}",
                             "{\"path\":\"dirlink/secret.txt\"}", "{\"path\":\"/etc/passwd\"}", "{\"path\":\"sub\"}", "{\"nopath\":1}", "[1]"};
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        r = tool(wd, "read_file", escapes[i], &err);
        EXPECT(!r && err, "read %s must fail, got %s", escapes[i], r ? r : "");
        free(r);
    }
    r = tool(wd, "list_dir", "{\"path\":\"dirlink\"}", &err);
    EXPECT(!r && err, "list through a link must fail");
    free(r);
    r = tool(wd, "list_dir", "{\"path\":\".\"}", &err);
    EXPECT(r && !err && strstr(r, "sub/") && strstr(r, "link"), "list: %s", r ? r : k2c_errmsg());
    free(r);
    r = tool(wd, "write_file", "{\"path\":\"sub/new.txt\",\"content\":\"x\\u00e9\"}", &err);
    EXPECT(r && !err, "write: %s", r ? r : k2c_errmsg());
    free(r);
    snprintf(p, sizeof p, "%s/sub/new.txt", wd);
    size_t n;
    char *back = k2c_read_file(p, &n);
    EXPECT(back && n == 3 && !memcmp(back, "x\xc3\xa9", 3), "written bytes");
    free(back);
    /* writing over a link replaces the link, never the file it points to */
    r = tool(wd, "write_file", "{\"path\":\"link\",\"content\":\"owned\"}", &err);
    free(r);
    back = k2c_read_file(outside, &n);
    EXPECT(back && !strcmp(back, "SECRET"), "the outside file must be untouched");
    free(back);
    r = tool(wd, "write_file", "{\"path\":\"dirlink/x.txt\",\"content\":\"x\"}", &err);
    EXPECT(!r && err, "write through a directory link must fail");
    free(r);
    snprintf(p, sizeof p, "%s/x.txt", root);
    EXPECT(access(p, F_OK) != 0, "nothing written outside");
    r = tool(wd, "calculator", "{\"expression\":\"6*7\"}", &err);
    EXPECT(r && !err && !strcmp(r, "42"), "calculator tool: %s", r ? r : k2c_errmsg());
    free(r);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    EXPECT(system(cmd) == 0, "cleanup");
}

/* ---- calendar and units: values checked against hand-computed ones */
static char *call(k2c_toolbox *b, const char *name, const char *args, int *err) {
    return k2c_toolbox_call(b, name, args, err);
}

static void test_dates_units(void) {
    k2c_toolbox_opts to = {.groups = K2C_TOOLS_DATES | K2C_TOOLS_UNITS};
    k2c_toolbox *b = k2c_toolbox_new(&to);
    EXPECT(b, "%s", k2c_errmsg());
    if (!b) return;
    struct { const char *tool, *args, *want; } ok[] = {
        {"days_between", "{\"start\":\"2026-01-01\",\"end\":\"2026-03-01\"}", "{\"days\":59}"},
        {"days_between", "{\"start\":\"2024-03-01\",\"end\":\"2024-02-01\"}", "{\"days\":-29}"},     /* leap year */
        {"days_between", "{\"start\":\"1999-12-31\",\"end\":\"2000-12-31\"}", "{\"days\":366}"},
        {"weekday", "{\"date\":\"2026-12-01\"}", "{\"weekday\":\"Tuesday\"}"},
        {"weekday", "{\"date\":\"1970-01-01\"}", "{\"weekday\":\"Thursday\"}"},
        {"weekday", "{\"date\":\"2000-02-29\"}", "{\"weekday\":\"Tuesday\"}"},
        {"add_days", "{\"date\":\"2026-12-25\",\"days\":10}", "{\"date\":\"2027-01-04\"}"},
        {"add_days", "{\"date\":\"2028-03-01\",\"days\":-1}", "{\"date\":\"2028-02-29\"}"},
        {"convert_units", "{\"value\":5,\"from\":\"km\",\"to\":\"mi\"}", "{\"result\":3.106855961,\"unit\":\"mi\"}"},
        {"convert_units", "{\"value\":100,\"from\":\"C\",\"to\":\"F\"}", "{\"result\":212,\"unit\":\"F\"}"},
        {"convert_units", "{\"value\":-40,\"from\":\"fahrenheit\",\"to\":\"celsius\"}", "{\"result\":-40,\"unit\":\"C\"}"},
        {"convert_units", "{\"value\":0,\"from\":\"K\",\"to\":\"C\"}", "{\"result\":-273.15,\"unit\":\"C\"}"},
        {"convert_units", "{\"value\":2,\"from\":\"lb\",\"to\":\"g\"}", "{\"result\":907.18474,\"unit\":\"g\"}"},
        {"convert_units", "{\"value\":1,\"from\":\"gal\",\"to\":\"ml\"}", "{\"result\":3785.411784,\"unit\":\"ml\"}"},
        {"convert_units", "{\"value\":1.5,\"from\":\"day\",\"to\":\"h\"}", "{\"result\":36,\"unit\":\"h\"}"},
        {"convert_units", "{\"value\":12,\"from\":\"in\",\"to\":\"ft\"}", "{\"result\":1,\"unit\":\"ft\"}"},
        {"convert_units", "{\"value\":3,\"from\":\"yd\",\"to\":\"cm\"}", "{\"result\":274.32,\"unit\":\"cm\"}"},
        {"convert_units", "{\"value\":16,\"from\":\"oz\",\"to\":\"lb\"}", "{\"result\":1,\"unit\":\"lb\"}"},
        {"convert_units", "{\"value\":90,\"from\":\"min\",\"to\":\"s\"}", "{\"result\":5400,\"unit\":\"s\"}"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int err;
        char *r = call(b, ok[i].tool, ok[i].args, &err);
        EXPECT(r && !err && !strcmp(r, ok[i].want), "%s %s = %s, want %s", ok[i].tool, ok[i].args, r ? r : k2c_errmsg(), ok[i].want);
        free(r);
    }
    struct { const char *tool, *args, *msg; } bad[] = {
        {"days_between", "{\"start\":\"2026-02-30\",\"end\":\"2026-03-01\"}", "not a calendar date"},
        {"days_between", "{\"start\":\"2026/01/01\",\"end\":\"2026-03-01\"}", "not an ISO date"},
        {"weekday", "{}", "not an ISO date"},
        {"weekday", "{\"date\":\"2026-1-01\"}", "not an ISO date"},
        {"add_days", "{\"date\":\"2026-01-01\",\"days\":1.5}", "integer"},
        {"add_days", "{\"date\":\"2026-01-01\"}", "missing 'days'"},
        {"convert_units", "{\"value\":1,\"from\":\"kg\",\"to\":\"km\"}", "cannot convert"},
        {"convert_units", "{\"value\":1,\"from\":\"parsec\",\"to\":\"km\"}", "unknown unit"},
        {"convert_units", "{\"value\":\"1\",\"from\":\"m\",\"to\":\"km\"}", "needs 'value'"},
        {"convert_units", "{\"value\":-500,\"from\":\"C\",\"to\":\"K\"}", "absolute zero"},
        {"convert_units", "[]", "JSON object"},
        {"calculator", "{\"expression\":\"1+1\"}", "unknown tool"},          /* not a declared group */
        {"write_file", "{\"path\":\"x\",\"content\":\"\"}", "--allow-write"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err;
        char *r = call(b, bad[i].tool, bad[i].args, &err);
        EXPECT(!r && err && strstr(k2c_errmsg(), bad[i].msg), "%s %s: got %s / '%s', want an error with '%s'", bad[i].tool,
               bad[i].args, r ? r : "NULL", k2c_errmsg(), bad[i].msg);
        free(r);
    }
    /* every declaration is valid JSON with a name, and only the asked-for groups are declared */
    const char *decl = k2c_toolbox_json(b);
    EXPECT(decl && strstr(decl, "\"convert_units\"") && strstr(decl, "\"add_days\"") && !strstr(decl, "\"calculator\""), "decl %s", decl);
    EXPECT(k2c_toolbox_has(b, "weekday") && !k2c_toolbox_has(b, "read_file"), "has");
    k2c_toolbox_free(b);
    /* every date of 1900..2100 round-trips through the weekday tool's 7-day cycle */
    k2c_toolbox_opts all = {.groups = K2C_TOOLS_BUILTIN};
    b = k2c_toolbox_new(&all);
    EXPECT(b, "%s", k2c_errmsg());
    if (b) {
        int bad_days = 0;
        for (int d = -25567; d < 47482; d += 37) {
            char args[96], want[64], *r;
            int err;
            snprintf(args, sizeof args, "{\"date\":\"1970-01-01\",\"days\":%d}", d);
            r = call(b, "add_days", args, &err);
            if (!r) { bad_days++; continue; }
            char date[16];
            sscanf(r, "{\"date\":\"%10s", date);
            free(r);
            snprintf(args, sizeof args, "{\"start\":\"1970-01-01\",\"end\":\"%s\"}", date);
            snprintf(want, sizeof want, "{\"days\":%d}", d);
            r = call(b, "days_between", args, &err);
            if (!r || strcmp(r, want)) bad_days++;
            free(r);
        }
        EXPECT(bad_days == 0, "%d dates did not round-trip", bad_days);
        EXPECT(k2c_toolbox_has(b, "calculator") && k2c_toolbox_has(b, "search_flights") && !k2c_toolbox_has(b, "write_file"), "builtin groups");
        k2c_toolbox_free(b);
    }
}

/* ---- the travel environment: deterministic catalogue, bookings are state, errors are results */
static long json_long(const char *s, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(s, k);
    return p ? atol(p + strlen(k)) : -1;
}

static void test_travel(void) {
    k2c_toolbox_opts to = {.groups = K2C_TOOLS_TRAVEL, .seed = 2026};
    k2c_toolbox *b = k2c_toolbox_new(&to), *b2 = k2c_toolbox_new(&to);
    EXPECT(b && b2, "%s", k2c_errmsg());
    if (!b || !b2) { k2c_toolbox_free(b); k2c_toolbox_free(b2); return; }
    int err;
    const char *q = "{\"from\":\"HAN\",\"to\":\"DAD\",\"date\":\"2026-06-12\"}";
    char *r1 = call(b, "search_flights", q, &err), *r2 = call(b2, "search_flights", q, &err);
    EXPECT(r1 && r2 && !strcmp(r1, r2) && strstr(r1, "\"flights\":[{\"id\":\"HAN-DAD-20260612-1\""), "same seed, same flights: %s", r1 ? r1 : k2c_errmsg());
    /* every day of 2026 and 2027 has flights on every route */
    static const char *codes[] = {"HAN", "SGN", "DAD", "CXR", "PQC"};
    int empty = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            if (i == j) continue;
            for (int day = 0; day < 730; day += 53) {
                char args[128], *r;
                int y = day < 365 ? 2026 : 2027, doy = day % 365, m = 1;
                static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
                while (doy >= md[m - 1]) doy -= md[m++ - 1];
                snprintf(args, sizeof args, "{\"from\":\"%s\",\"to\":\"%s\",\"date\":\"%04d-%02d-%02d\"}", codes[i], codes[j], y, m, doy + 1);
                r = call(b2, "search_flights", args, &err);
                if (!r || !strstr(r, "\"price\":")) empty++;
                free(r);
            }
        }
    EXPECT(empty == 0, "%d route-days without flights", empty);
    /* max_price filters */
    char *cheap = call(b, "search_flights", "{\"from\":\"HAN\",\"to\":\"DAD\",\"date\":\"2026-06-12\",\"max_price\":1}", &err);
    EXPECT(cheap && !strcmp(cheap, "{\"flights\":[]}"), "max_price 1: %s", cheap ? cheap : k2c_errmsg());
    free(cheap);
    /* booking every seat of the first flight removes it from the search */
    long seats = json_long(r1, "seats_left"), price = json_long(r1, "price");
    EXPECT(seats >= 1 && seats <= 9 && price > 0, "seats %ld price %ld", seats, price);
    char args[160];
    snprintf(args, sizeof args, "{\"flight_id\":\"HAN-DAD-20260612-1\",\"passengers\":%ld}", seats + 1);
    char *bk = call(b, "book_flight", args, &err);
    EXPECT(!bk && err && strstr(k2c_errmsg(), "left"), "overbooking must fail: %s", bk ? bk : k2c_errmsg());
    free(bk);
    snprintf(args, sizeof args, "{\"flight_id\":\"HAN-DAD-20260612-1\",\"passengers\":%ld}", seats);
    bk = call(b, "book_flight", args, &err);
    EXPECT(bk && !err && json_long(bk, "total_price") == seats * price && strstr(bk, "\"booking_id\":\"B1\""), "book: %s", bk ? bk : k2c_errmsg());
    free(bk);
    char *after = call(b, "search_flights", q, &err);
    EXPECT(after && !strstr(after, "HAN-DAD-20260612-1\""), "a full flight is gone: %s", after ? after : k2c_errmsg());
    free(after);
    bk = call(b, "book_flight", "{\"flight_id\":\"HAN-DAD-20260612-1\",\"passengers\":1}", &err);
    EXPECT(!bk && err, "no seat left");
    free(bk);
    /* hotels: Da Nang has 4-star sea-view hotels; booking the last room removes a hotel */
    char *h = call(b, "search_hotels", "{\"city\":\"da nang\",\"stars\":4,\"sea_view\":true}", &err);
    EXPECT(h && strstr(h, "\"stars\":4") && strstr(h, "\"sea_view\":true") && strstr(h, "\"city\":\"Da Nang\""), "hotels: %s", h ? h : k2c_errmsg());
    char *hn = call(b, "search_hotels", "{\"city\":\"Hanoi\",\"sea_view\":true}", &err);
    EXPECT(hn && !strcmp(hn, "{\"hotels\":[]}"), "Hanoi has no sea view: %s", hn ? hn : k2c_errmsg());
    free(hn);
    char hid[32] = "";
    const char *p = h ? strstr(h, "\"id\":\"") : NULL;
    if (p) sscanf(p + 6, "%31[^\"]", hid);
    int rooms = 0;
    for (; rooms < 10; rooms++) {
        snprintf(args, sizeof args, "{\"hotel_id\":\"%s\",\"nights\":3}", hid);
        char *x = call(b, "book_hotel", args, &err);
        free(x);
        if (!x) break;
    }
    EXPECT(rooms >= 1 && rooms <= 4 && strstr(k2c_errmsg(), "no room left"), "booked %d rooms of %s, then '%s'", rooms, hid, k2c_errmsg());
    char *h2 = call(b, "search_hotels", "{\"city\":\"DAD\",\"stars\":4,\"sea_view\":true}", &err);
    EXPECT(h2 && !strstr(h2, hid), "a full hotel is gone: %s", h2 ? h2 : "");
    free(h2);
    free(h);
    char *st = k2c_toolbox_state_json(b);
    EXPECT(st && strstr(st, "\"type\":\"flight\"") && strstr(st, "\"type\":\"hotel\"") && json_long(st, "spent") > 0, "state %s", st ? st : "");
    free(st);
    EXPECT(k2c_toolbox_reset(b) == 0, "reset");
    st = k2c_toolbox_state_json(b);
    EXPECT(st && !strcmp(st, "{\"bookings\":[],\"spent\":0}"), "reset state %s", st ? st : "");
    free(st);
    /* bad calls: every one an error result */
    const char *bad[][2] = {
        {"search_flights", "{\"from\":\"HAN\",\"to\":\"HAN\",\"date\":\"2026-06-12\"}"},
        {"search_flights", "{\"from\":\"LHR\",\"to\":\"HAN\",\"date\":\"2026-06-12\"}"},
        {"search_flights", "{\"from\":\"SGN\",\"to\":\"HAN\",\"date\":\"2028-01-01\"}"},
        {"search_flights", "{\"from\":\"SGN\",\"to\":\"HAN\"}"},
        {"search_flights", "{\"from\":\"SGN\",\"to\":\"HAN\",\"date\":\"2026-06-12\",\"max_price\":\"cheap\"}"},
        {"book_flight", "{\"flight_id\":\"HAN-DAD-20260612-9\",\"passengers\":1}"},
        {"book_flight", "{\"flight_id\":\"HAN-DAD-20260612-1\",\"passengers\":0}"},
        {"book_flight", "{\"flight_id\":\"HAN-DAD-20260612-1\"}"},
        {"book_flight", "{\"flight_id\":\"%s%s%s%s%s\",\"passengers\":1}"},
        {"search_hotels", "{\"city\":\"Paris\"}"},
        {"search_hotels", "{\"city\":\"Hanoi\",\"stars\":7}"},
        {"search_hotels", "{\"city\":\"Hanoi\",\"sea_view\":\"yes\"}"},
        {"book_hotel", "{\"hotel_id\":\"H-XXX-1\",\"nights\":1}"},
        {"book_hotel", "{\"hotel_id\":\"H-DAD-1\",\"nights\":100}"},
        {"book_hotel", "not json"},
        {"cancel_booking", "{}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *r = call(b, bad[i][0], bad[i][1], &err);
        EXPECT(!r && err && *k2c_errmsg(), "%s %s should be an error result, got %s", bad[i][0], bad[i][1], r ? r : "NULL");
        free(r);
    }
    free(r1); free(r2);
    k2c_toolbox_free(b);
    k2c_toolbox_free(b2);
}

/* ---- safety: write_file off unless asked for, and then only in a named folder */
static void test_write_gate(void) {
    k2c_toolbox_opts to = {.groups = K2C_TOOLS_BUILTIN, .allow_write = 1};
    k2c_toolbox *b = k2c_toolbox_new(&to);
    EXPECT(!b && strstr(k2c_errmsg(), "explicitly named"), "allow_write without a workdir must be refused: %s", k2c_errmsg());
    k2c_toolbox_free(b);
    to.workdir = "/nonexistent/k2c";
    b = k2c_toolbox_new(&to);
    EXPECT(!b && strstr(k2c_errmsg(), "/nonexistent/k2c"), "a missing workdir names itself: %s", k2c_errmsg());
    k2c_toolbox_free(b);
    char root[] = "/tmp/k2c-gate-XXXXXX";
    EXPECT(mkdtemp(root) != NULL, "mkdtemp");
    k2c_toolbox_opts ro = {.groups = K2C_TOOLS_BUILTIN, .workdir = root};
    b = k2c_toolbox_new(&ro);
    int err;
    char *r = b ? call(b, "write_file", "{\"path\":\"x.txt\",\"content\":\"x\"}", &err) : NULL;
    EXPECT(b && !r && err && strstr(k2c_errmsg(), "--allow-write") && !strstr(k2c_toolbox_json(b), "write_file"), "write off by default");
    free(r);
    k2c_toolbox_free(b);
    char p[160];
    snprintf(p, sizeof p, "%s/x.txt", root);
    EXPECT(access(p, F_OK) != 0, "nothing written");
    ro.allow_write = 1;
    b = k2c_toolbox_new(&ro);
    r = b ? call(b, "write_file", "{\"path\":\"x.txt\",\"content\":\"x\"}", &err) : NULL;
    EXPECT(r && !err && access(p, F_OK) == 0 && strstr(k2c_toolbox_json(b), "write_file"), "write with allow_write: %s", r ? r : k2c_errmsg());
    free(r);
    /* a FIFO is refused at once, never waited on */
    snprintf(p, sizeof p, "%s/pipe", root);
    EXPECT(mkfifo(p, 0644) == 0, "mkfifo");
    double t0 = k2c_now();
    r = b ? call(b, "read_file", "{\"path\":\"pipe\"}", &err) : NULL;
    EXPECT(!r && err && strstr(k2c_errmsg(), "FIFO") && k2c_now() - t0 < 2, "FIFO: %s", r ? r : k2c_errmsg());
    free(r);
    r = b ? call(b, "list_dir", "{\"path\":\"pipe\"}", &err) : NULL;
    EXPECT(!r && err, "list a FIFO");
    free(r);
    k2c_toolbox_free(b);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    EXPECT(system(cmd) == 0, "cleanup");
}

/* ---- synthesis: every reference trajectory, replayed on a fresh environment, gives the same tool results
 * and passes its own verifier; a wrong answer or state does not; held-out templates are never in train */
static int replay(const k2c_task *t, char **transcript, char **answer, int *mismatch) {
    char wd[64] = "";
    json_t *files = t->files_json ? json_loads(t->files_json, 0, NULL) : NULL;
    if (files) {
        snprintf(wd, sizeof wd, "/tmp/k2c-replay-XXXXXX");
        if (!mkdtemp(wd)) return -1;
        const char *k;
        json_t *v;
        json_object_foreach(files, k, v) {
            char *p = k2c_path_join(wd, k);
            k2c_write_file_atomic(p, json_string_value(v), json_string_length(v));
            free(p);
        }
        json_decref(files);
    }
    k2c_toolbox_opts to = {.workdir = wd[0] ? wd : NULL};
    if (k2c_tool_groups_parse(t->tools, &to.groups)) return -1;
    k2c_toolbox *b = k2c_toolbox_new(&to);
    if (!b) return -1;
    json_t *msgs = json_loads(t->reference_json, 0, NULL), *m;
    size_t i;
    *mismatch = 0;
    *answer = NULL;
    json_array_foreach(msgs, i, m) {
        json_t *tc = json_object_get(m, "tool_calls");
        if (json_array_size(tc)) {
            json_t *f = json_object_get(json_array_get(tc, 0), "function");
            int err;
            char *r = k2c_toolbox_call(b, json_string_value(json_object_get(f, "name")), json_string_value(json_object_get(f, "arguments")), &err);
            char *seen = NULL;
            if (!r && asprintf(&seen, "Error: %s", k2c_errmsg()) < 0) seen = NULL;
            const char *want = json_string_value(json_object_get(json_array_get(msgs, i + 1), "content"));
            if (!want || strcmp(r ? r : seen ? seen : "", want)) (*mismatch)++;
            free(r); free(seen);
        } else if (!strcmp(json_string_value(json_object_get(m, "role")), "assistant")) {
            free(*answer);
            *answer = strdup(json_string_value(json_object_get(m, "content")));
        }
    }
    char *st = k2c_toolbox_state_json(b);
    json_t *tr = json_pack("{s:o,s:o}", "messages", msgs, "state", json_loads(st, 0, NULL));
    *transcript = json_dumps(tr, JSON_COMPACT);
    json_decref(tr);
    free(st);
    k2c_toolbox_free(b);
    if (wd[0]) { char cmd[96]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", wd); if (system(cmd)) {} }
    return 0;
}

static void test_synth(void) {
    char dir[] = "/tmp/k2c-synth-test-XXXXXX";
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    char tr[128], ho[128];
    snprintf(tr, sizeof tr, "%s/train.jsonl", dir);
    snprintf(ho, sizeof ho, "%s/heldout.jsonl", dir);
    k2c_synth_opts o = {.n = 330, .seed = 5, .split = "train"};
    EXPECT(k2c_synth_tasks(&o, tr) == 0, "%s", k2c_errmsg());
    o.split = "heldout"; o.seed = 6;
    EXPECT(k2c_synth_tasks(&o, ho) == 0, "%s", k2c_errmsg());
    k2c_task *a = NULL, *h = NULL;
    int na = 0, nh = 0;
    EXPECT(k2c_tasks_load(tr, NULL, &a, &na) == 0 && na == 330, "train: %d, %s", na, k2c_errmsg());
    EXPECT(k2c_tasks_load(ho, "heldout", &h, &nh) == 0 && nh == 330, "heldout: %d, %s", nh, k2c_errmsg());
    int bad = 0, mism = 0, cats = 0, overlap = 0, wrong_pass = 0;
    const char *seen_cats[16];
    for (int s = 0; s < 2; s++) {
        k2c_task *t = s ? h : a;
        int n = s ? nh : na;
        for (int i = 0; i < n; i++) {
            char *trn = NULL, *ans = NULL;
            int mm = 0;
            k2c_verdict v;
            if (replay(&t[i], &trn, &ans, &mm) || k2c_task_verify(&t[i], ans, trn, &v) || !v.success) {
                if (bad++ < 5) printf("  %s: %s (%s)\n", t[i].id, v.why, k2c_errmsg());
            }
            mism += mm;
            /* a wrong final answer (and no bookings) must fail the same verifier */
            k2c_verdict w;
            if (k2c_task_verify(&t[i], "I do not know.", "{\"messages\":[],\"state\":{\"bookings\":[],\"spent\":0}}", &w) == 0 && w.success) wrong_pass++;
            free(trn); free(ans);
            int known = 0;
            for (int c = 0; c < cats; c++) if (!strcmp(seen_cats[c], t[i].category)) known = 1;
            if (!known && cats < 16) seen_cats[cats++] = t[i].category;
        }
    }
    for (int i = 0; i < nh; i++)
        for (int j = 0; j < na; j++) if (!strcmp(h[i].template_id, a[j].template_id)) { overlap++; break; }
    EXPECT(bad == 0, "%d reference trajectories fail their verifier", bad);
    EXPECT(mism == 0, "%d replayed tool results differ from the reference", mism);
    EXPECT(wrong_pass == 0, "%d tasks accept a wrong answer", wrong_pass);
    EXPECT(cats == 11, "%d categories", cats);
    EXPECT(overlap == 0, "%d held-out tasks use a training template", overlap);
    printf("  synth: %d + %d tasks, %d categories, every reference verified\n", na, nh, cats);
    k2c_tasks_free(a, na);
    k2c_tasks_free(h, nh);
    /* malformed task files: clear errors naming file, line and field */
    struct { const char *line, *msg; } badf[] = {
        {"{\"id\":\"x\",\"task\":\"t\",\"tools\":\"calculator\"}", ":1: field 'verify' missing"},
        {"not json", ":1: not JSON"},
        {"{\"id\":\"x\",\"task\":\"t\",\"tools\":\"calculator,teleport\",\"verify\":{}}", "field 'tools'"},
        {"{\"id\":\"x\",\"task\":\"t\",\"tools\":\"none\",\"verify\":{\"answer\":[1]}}", "verify.answer[0]"},
        {"{\"id\":\"x\",\"task\":\"t\",\"tools\":\"none\",\"verify\":{\"state\":[{\"type\":\"flight\"}]}}", "verify.state[0]"},
        {"{\"id\":\"x\",\"task\":\"t\",\"tools\":\"files\",\"files\":{\"../x\":\"a\"},\"verify\":{}}", "files['../x']"},
        {"{\"task\":\"t\",\"tools\":\"none\",\"verify\":{}}", "field 'id'"},
        {"", "no tasks"},
    };
    for (size_t i = 0; i < sizeof badf / sizeof badf[0]; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s/bad.jsonl", dir);
        k2c_write_file_atomic(p, badf[i].line, strlen(badf[i].line));
        k2c_task *x = NULL;
        int nx = 0;
        int rc = k2c_tasks_load(p, NULL, &x, &nx);
        EXPECT(rc != 0 && strstr(k2c_errmsg(), badf[i].msg) && strstr(k2c_errmsg(), "bad.jsonl"), "'%s': rc %d, '%s'", badf[i].line, rc, k2c_errmsg());
        if (!rc) k2c_tasks_free(x, nx);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    EXPECT(system(cmd) == 0, "cleanup");
}

int main(void) {
    run_test("agent_calculator", test_calculator);
    run_test("agent_fs_confinement", test_confinement);
    run_test("agent_dates_units", test_dates_units);
    run_test("agent_travel_env", test_travel);
    run_test("agent_write_gate_fifo", test_write_gate);
    run_test("agent_synth_references_verify", test_synth);
    return check_exit();
}
