/* Agent built-ins: the calculator (arithmetic only, errors not crashes) and the confined file tools
 * (no absolute paths, no "..", no symbolic links followed anywhere in a path, atomic writes). */
#include "check.h"
#include "serve/serve.h"

#include <fcntl.h>
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

int main(void) {
    run_test("agent_calculator", test_calculator);
    run_test("agent_fs_confinement", test_confinement);
    return check_exit();
}
