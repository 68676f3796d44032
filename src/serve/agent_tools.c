/* The agent's built-in tools: a calculator (a parser for arithmetic, never an eval of code) and
 * read_file / list_dir / write_file confined to a working directory; the toolbox that declares and
 * dispatches every built-in group (the environments of agent_env.c included).
 *
 * Confinement does not trust path strings: the path is split into components, "." is skipped, ".." and
 * absolute paths are refused, and each component is opened with openat(..., O_NOFOLLOW) starting from a
 * descriptor of the working directory, so no symbolic link is ever followed (a link anywhere in the path
 * makes the call fail) and a directory swapped for a link between checks cannot redirect the open.
 * Writes go to a temporary file in the same directory and are renamed into place (atomic). */
#include "serve/serve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ calculator */
typedef struct { const char *s; int depth; const char *err; } calc;

static double expr(calc *c);

static void skip(calc *c) { while (*c->s == ' ' || *c->s == '\t' || *c->s == '\n') c->s++; }

static double primary(calc *c) {
    skip(c);
    if (++c->depth > 64) { c->err = "expression nested too deeply"; return 0; }
    double v = 0;
    if (*c->s == '(') {
        c->s++;
        v = expr(c);
        skip(c);
        if (*c->s != ')') { if (!c->err) c->err = "missing ')'"; }
        else c->s++;
    } else if ((*c->s >= '0' && *c->s <= '9') || *c->s == '.') {
        char *end;
        v = strtod(c->s, &end);
        if (end == c->s) c->err = "bad number";
        c->s = end;
    } else if ((*c->s >= 'a' && *c->s <= 'z') || (*c->s >= 'A' && *c->s <= 'Z')) {
        char name[16];
        int n = 0;
        while (((*c->s >= 'a' && *c->s <= 'z') || (*c->s >= 'A' && *c->s <= 'Z') || (*c->s >= '0' && *c->s <= '9')) && n < 15)
            name[n++] = *c->s++;
        name[n] = 0;
        if (!strcmp(name, "pi")) v = M_PI;
        else if (!strcmp(name, "e")) v = M_E;
        else {
            static const struct { const char *n; double (*f)(double); } fns[] = {
                {"sqrt", sqrt}, {"sin", sin}, {"cos", cos}, {"tan", tan}, {"log", log}, {"ln", log}, {"log10", log10},
                {"exp", exp}, {"abs", fabs}, {"floor", floor}, {"ceil", ceil}, {"round", round}, {"asin", asin},
                {"acos", acos}, {"atan", atan},
            };
            int k = -1;
            for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) if (!strcmp(name, fns[i].n)) k = (int)i;
            skip(c);
            if (k < 0 || *c->s != '(') { c->err = "unknown name (functions: sqrt sin cos tan log ln log10 exp abs floor ceil round asin acos atan; constants pi e)"; c->depth--; return 0; }
            v = fns[k].f(primary(c));
        }
    } else c->err = *c->s ? "unexpected character" : "unexpected end";
    c->depth--;
    return v;
}

static double unary(calc *c);

static double power(calc *c) {       /* right associative: 2^3^2 = 2^9 */
    double b = primary(c);
    skip(c);
    if (c->err || (*c->s != '^' && !(c->s[0] == '*' && c->s[1] == '*'))) return b;
    c->s += *c->s == '^' ? 1 : 2;
    if (++c->depth > 64) { c->err = "expression nested too deeply"; return 0; }
    double e = unary(c);
    c->depth--;
    return pow(b, e);
}

/* Unary signs bind looser than ^, as in mathematics: -2^2 = -4. */
static double unary(calc *c) {
    skip(c);
    if (*c->s != '-' && *c->s != '+') return power(c);
    int neg = *c->s == '-';
    c->s++;
    if (++c->depth > 64) { c->err = "expression nested too deeply"; return 0; }
    double v = unary(c);
    c->depth--;
    return neg ? -v : v;
}

static double term(calc *c) {
    double v = unary(c);
    for (;;) {
        skip(c);
        char op = *c->s;
        if (c->err || (op != '*' && op != '/' && op != '%') || (op == '*' && c->s[1] == '*')) return v;
        c->s++;
        double r = unary(c);
        if (op == '*') v *= r;
        else if (r == 0) { c->err = "division by zero"; return 0; }
        else v = op == '/' ? v / r : fmod(v, r);
    }
}

static double expr(calc *c) {
    double v = term(c);
    for (;;) {
        skip(c);
        char op = *c->s;
        if (c->err || (op != '+' && op != '-')) return v;
        c->s++;
        double r = term(c);
        v = op == '+' ? v + r : v - r;
    }
}

int k2c_calc_eval(const char *text, double *out) {
    if (strlen(text) > 4096) { k2c_seterr("expression over 4096 characters"); return -1; }
    calc c = {.s = text};
    double v = expr(&c);
    skip(&c);
    if (!c.err && *c.s) c.err = "unexpected character";
    if (c.err) { k2c_seterr("%s at offset %d", c.err, (int)(c.s - text)); return -1; }
    if (!isfinite(v)) { k2c_seterr("the result is not a finite number"); return -1; }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ confined files */
#define READ_MAX (256 << 10)
#define WRITE_MAX (1 << 20)

/* Opens the parent directory of path (relative to root, no links followed) and returns its fd; *leaf
 * points into path at the last component ("" for the root itself). -1 + error. */
static int open_parent(int root, const char *path, char *copy, size_t cap, const char **leaf) {
    if (strlen(path) >= cap) { k2c_seterr("path too long"); return -1; }
    if (path[0] == '/') { k2c_seterr("absolute paths are not allowed; paths are relative to the working directory"); return -1; }
    strcpy(copy, path);
    int fd = dup(root);
    if (fd < 0) { k2c_seterr("dup: %s", strerror(errno)); return -1; }
    char *p = copy, *last = NULL;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash) *slash = 0;
        if (!strcmp(p, "..")) { close(fd); k2c_seterr("'..' is not allowed in paths"); return -1; }
        if (!slash) { last = p; break; }
        if (*p && strcmp(p, ".")) {
            int nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (nfd < 0) {
                int e = errno;
                close(fd);
                k2c_seterr("%s: %s", p, e == ELOOP ? "is a symbolic link (not followed)" : e == ENOTDIR ? "not a directory (or a symbolic link)" : strerror(e));
                return -1;
            }
            close(fd);
            fd = nfd;
        }
        p = slash + 1;
    }
    *leaf = !strcmp(last, ".") ? "" : last;
    return fd;
}

static char *fs_read(int root, const char *path) {
    char copy[4096];
    const char *leaf;
    int dfd = open_parent(root, path, copy, sizeof copy, &leaf);
    if (dfd < 0) return NULL;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; it is refused just below. */
    int fd = *leaf ? openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) : -1;
    int e = errno;
    close(dfd);
    if (fd < 0) { k2c_seterr("%s: %s", path, !*leaf ? "is a directory" : e == ELOOP ? "is a symbolic link (not followed)" : strerror(e)); return NULL; }
    struct stat st = {0};
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        k2c_seterr("%s: not a regular file%s", path, S_ISFIFO(st.st_mode) ? " (a FIFO)" : S_ISDIR(st.st_mode) ? " (a directory)" : "");
        return NULL;
    }
    size_t n = st.st_size > READ_MAX ? READ_MAX : (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 64);
    if (!buf) { close(fd); k2c_seterr("out of memory"); return NULL; }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    if ((size_t)st.st_size > got) strcat(buf, "\n[truncated]");
    return buf;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *fs_list(int root, const char *path) {
    char copy[4096];
    const char *leaf;
    int dfd = open_parent(root, *path ? path : ".", copy, sizeof copy, &leaf);
    if (dfd < 0) return NULL;
    int fd = *leaf ? openat(dfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : dup(dfd);
    int e = errno;
    close(dfd);
    if (fd < 0) { k2c_seterr("%s: %s", path, e == ELOOP || e == ENOTDIR ? "not a directory (links are not followed)" : strerror(e)); return NULL; }
    DIR *d = fdopendir(fd);
    if (!d) { close(fd); k2c_seterr("%s: %s", path, strerror(errno)); return NULL; }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 10000) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (n == cap) { cap = cap ? cap * 2 : 64; char **nn = realloc(names, (size_t)cap * sizeof *nn); if (!nn) break; names = nn; }
        struct stat st;
        int isdir = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        size_t l = strlen(de->d_name);
        char *s = malloc(l + 2);
        if (!s) break;
        memcpy(s, de->d_name, l);
        s[l] = isdir ? '/' : 0;
        s[l + 1] = 0;
        names[n++] = s;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    size_t total = 1;
    for (int i = 0; i < n; i++) total += strlen(names[i]) + 1;
    char *out = malloc(total), *p = out;
    for (int i = 0; i < n; i++) {
        if (out) { size_t l = strlen(names[i]); memcpy(p, names[i], l); p += l; *p++ = '\n'; }
        free(names[i]);
    }
    free(names);
    if (!out) { k2c_seterr("out of memory"); return NULL; }
    *p = 0;
    return out;
}

static char *fs_write(int root, const char *path, const char *data, size_t len) {
    if (len > WRITE_MAX) { k2c_seterr("content over %d bytes", WRITE_MAX); return NULL; }
    char copy[4096], tmp[64];
    const char *leaf;
    int dfd = open_parent(root, path, copy, sizeof copy, &leaf);
    if (dfd < 0) return NULL;
    if (!*leaf) { close(dfd); k2c_seterr("%s: not a file name", path); return NULL; }
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        snprintf(tmp, sizeof tmp, ".k2c-tmp-%d-%d", (int)getpid(), i);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) { int e = errno; close(dfd); k2c_seterr("%s: %s", path, strerror(e)); return NULL; }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    int ok = off == len && fsync(fd) == 0;
    close(fd);
    /* renameat replaces the directory entry itself: a symbolic link at the target is replaced, not followed */
    if (!ok || renameat(dfd, tmp, dfd, leaf) != 0) {
        int e = errno;
        unlinkat(dfd, tmp, 0);
        close(dfd);
        k2c_seterr("%s: %s", path, strerror(e));
        return NULL;
    }
    close(dfd);
    char *msg = malloc(64 + strlen(path));
    if (msg) sprintf(msg, "wrote %zu bytes to %s", len, path);
    return msg;
}

/* One OpenAI declaration per tool, grouped as --tools names them. Descriptions are short on purpose: every
 * declared byte is in every prompt of a small-context model. */
#define FN(name, desc, params) "{\"type\":\"function\",\"function\":{\"name\":\"" name "\",\"description\":\"" desc \
                               "\",\"parameters\":{\"type\":\"object\"," params "}}}"
#define STR(n) "\"" n "\":{\"type\":\"string\",\"maxLength\":256}"
/* the grammar enforces lengths, enums and integer ranges (not patterns): a constrained call is never malformed */
#define DATE(n) "\"" n "\":{\"type\":\"string\",\"minLength\":10,\"maxLength\":10,\"pattern\":\"^[0-9]{4}-[0-9]{2}-[0-9]{2}$\"}"
#define IATA(n) "\"" n "\":{\"type\":\"string\",\"enum\":[\"HAN\",\"SGN\",\"DAD\",\"CXR\",\"PQC\"]}"
static const struct { unsigned group; const char *name, *decl; } DECLS[] = {
    {K2C_TOOLS_CALC, "calculator", FN("calculator", "Evaluate an arithmetic expression (+ - * / % ^, parentheses, sqrt sin cos "
        "tan log exp abs floor ceil round, pi, e).", "\"properties\":{" STR("expression") "},\"required\":[\"expression\"]")},
    {K2C_TOOLS_FILES, "read_file", FN("read_file", "Read a text file (path relative to the working directory).",
        "\"properties\":{" STR("path") "},\"required\":[\"path\"]")},
    {K2C_TOOLS_FILES, "list_dir", FN("list_dir", "List a directory (path relative to the working directory; directories end "
        "with /).", "\"properties\":{" STR("path") "},\"required\":[\"path\"]")},
    {K2C_TOOLS_WRITE, "write_file", FN("write_file", "Write (create or replace) a text file, atomically.",
        "\"properties\":{" STR("path") ",\"content\":{\"type\":\"string\"}},\"required\":[\"path\",\"content\"]")},
    {K2C_TOOLS_UNITS, "convert_units", FN("convert_units", "Convert a quantity: length m km cm mm mi ft in yd, mass kg g lb "
        "oz, temperature C F K, volume l ml gal, time s min h day.", "\"properties\":{\"value\":{\"type\":\"number\"},"
        "\"from\":{\"type\":\"string\",\"maxLength\":16},\"to\":{\"type\":\"string\",\"maxLength\":16}},\"required\":[\"value\",\"from\",\"to\"]")},
    {K2C_TOOLS_DATES, "days_between", FN("days_between", "Days from start to end (ISO dates; negative if end is earlier).",
        "\"properties\":{" DATE("start") "," DATE("end") "},\"required\":[\"start\",\"end\"]")},
    {K2C_TOOLS_DATES, "weekday", FN("weekday", "Day of the week of an ISO date.",
        "\"properties\":{" DATE("date") "},\"required\":[\"date\"]")},
    {K2C_TOOLS_DATES, "add_days", FN("add_days", "The ISO date a number of days after (or before, if negative) a date.",
        "\"properties\":{" DATE("date") ",\"days\":{\"type\":\"integer\"}},\"required\":[\"date\",\"days\"]")},
    {K2C_TOOLS_TRAVEL, "search_flights", FN("search_flights", "Flights on a day between airports HAN SGN DAD CXR PQC (prices "
        "in VND, per passenger).", "\"properties\":{" IATA("from") "," IATA("to") "," DATE("date") ",\"max_price\":{\"type\":\"integer\"}},\"required\":[\"from\",\"to\",\"date\"]")},
    {K2C_TOOLS_TRAVEL, "book_flight", FN("book_flight", "Book seats on a flight from search_flights.",
        "\"properties\":{\"flight_id\":{\"type\":\"string\",\"maxLength\":32},\"passengers\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":9}},"
        "\"required\":[\"flight_id\",\"passengers\"]")},
    {K2C_TOOLS_TRAVEL, "search_hotels", FN("search_hotels", "Hotels in Da Nang, Hanoi, Ho Chi Minh City, Nha Trang or Phu "
        "Quoc (price per night in VND).", "\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":32},\"stars\":{\"type\":"
        "\"integer\",\"minimum\":1,\"maximum\":5},\"sea_view\":{\"type\":\"boolean\"},\"max_price\":{\"type\":\"integer\"}},\"required\":[\"city\"]")},
    {K2C_TOOLS_TRAVEL, "book_hotel", FN("book_hotel", "Book a room in a hotel from search_hotels.",
        "\"properties\":{\"hotel_id\":{\"type\":\"string\",\"maxLength\":32},\"nights\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":30}},"
        "\"required\":[\"hotel_id\",\"nights\"]")},
};
#define NDECLS (int)(sizeof DECLS / sizeof DECLS[0])

/* The declarations of the given groups as one OpenAI tools array (malloc'd). */
static char *join_decls(unsigned groups) {
    size_t n = 3;
    for (int i = 0; i < NDECLS; i++) if (DECLS[i].group & groups) n += strlen(DECLS[i].decl) + 1;
    char *s = malloc(n), *p = s;
    if (!s) { k2c_seterr("out of memory"); return NULL; }
    *p++ = '[';
    for (int i = 0; i < NDECLS; i++)
        if (DECLS[i].group & groups) {
            if (p > s + 1) *p++ = ',';
            size_t l = strlen(DECLS[i].decl);
            memcpy(p, DECLS[i].decl, l);
            p += l;
        }
    *p++ = ']';
    *p = 0;
    return s;
}

static char *builtin_decls;   /* the original four tools; built once, constant afterwards */
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static void build_builtin(void) { builtin_decls = join_decls(K2C_TOOLS_CALC | K2C_TOOLS_FILES | K2C_TOOLS_WRITE); }

const char *k2c_builtin_tools_json(void) {
    pthread_once(&builtin_once, build_builtin);
    return builtin_decls ? builtin_decls : "[]";
}

char *k2c_builtin_tool(const char *workdir, const char *name, const char *args_json, int *is_error) {
    *is_error = 1;
    json_t *a = json_loads(args_json, 0, NULL);
    char *out = NULL;
    if (!json_is_object(a)) { k2c_seterr("arguments must be a JSON object"); goto done; }
    if (!strcmp(name, "calculator")) {
        const char *e = json_string_value(json_object_get(a, "expression"));
        double v;
        if (!e) { k2c_seterr("missing 'expression'"); goto done; }
        if (k2c_calc_eval(e, &v) != 0) goto done;
        out = malloc(64);
        if (out) snprintf(out, 64, "%.15g", v);
        goto done;
    }
    const char *path = json_string_value(json_object_get(a, "path"));
    if (!path) { k2c_seterr("missing 'path'"); goto done; }
    int root = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) { k2c_seterr("%s: %s", workdir, strerror(errno)); goto done; }
    if (!strcmp(name, "read_file")) out = fs_read(root, path);
    else if (!strcmp(name, "list_dir")) out = fs_list(root, path);
    else if (!strcmp(name, "write_file")) {
        json_t *c = json_object_get(a, "content");
        if (!json_is_string(c)) k2c_seterr("missing 'content'");
        else out = fs_write(root, path, json_string_value(c), json_string_length(c));
    } else k2c_seterr("unknown tool '%s'", name);
    close(root);
done:
    json_decref(a);
    if (out) *is_error = 0;
    else if (!*k2c_errmsg()) k2c_seterr("out of memory");
    return out;
}

/* ------------------------------------------------------------------ the toolbox */
struct k2c_toolbox {
    unsigned groups;
    char *workdir;
    uint64_t seed;
    k2c_travel *travel;
    char *decl;
};

int k2c_tool_groups_parse(const char *list, unsigned *groups) {
    static const struct { const char *n; unsigned g; } names[] = {
        {"builtin", K2C_TOOLS_BUILTIN}, {"none", 0}, {"calculator", K2C_TOOLS_CALC}, {"files", K2C_TOOLS_FILES},
        {"dates", K2C_TOOLS_DATES}, {"units", K2C_TOOLS_UNITS}, {"travel", K2C_TOOLS_TRAVEL},
    };
    *groups = 0;
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        int k = -1;
        for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
            if (strlen(names[i].n) == l && !strncmp(names[i].n, p, l)) k = i;
        if (k < 0) {
            k2c_seterr("--tools: unknown group '%.*s' (builtin, none, or a comma list of calculator files dates units travel)", (int)l, p);
            return -1;
        }
        *groups |= names[k].g;
        p += l + (p[l] == ',');
    }
    return 0;
}

k2c_toolbox *k2c_toolbox_new(const k2c_toolbox_opts *o) {
    k2c_toolbox *b = calloc(1, sizeof *b);
    if (!b) { k2c_seterr("out of memory"); return NULL; }
    b->groups = o->groups & ~(unsigned)K2C_TOOLS_WRITE;
    b->seed = o->seed ? o->seed : 2026;   /* 0: the catalogue every task file is synthesised against */
    if (o->allow_write) {
        /* a tool that changes files must never default to wherever the command happened to run ($HOME) */
        if (!o->workdir || !*o->workdir) { free(b); k2c_seterr("write_file needs an explicitly named working directory (--workdir DIR)"); return NULL; }
        b->groups |= K2C_TOOLS_WRITE | K2C_TOOLS_FILES;
    }
    b->workdir = strdup(o->workdir && *o->workdir ? o->workdir : ".");
    if (b->groups & (K2C_TOOLS_FILES | K2C_TOOLS_WRITE)) {
        struct stat st;
        const char *why = stat(b->workdir, &st) ? strerror(errno) : !S_ISDIR(st.st_mode) ? "not a directory" : NULL;
        if (why) { k2c_seterr("working directory %s: %s", b->workdir, why); k2c_toolbox_free(b); return NULL; }
    }
    if ((b->groups & K2C_TOOLS_TRAVEL) && !(b->travel = k2c_travel_new(b->seed))) { k2c_toolbox_free(b); return NULL; }
    if (!b->workdir || !(b->decl = join_decls(b->groups))) { k2c_toolbox_free(b); k2c_seterr("out of memory"); return NULL; }
    return b;
}

void k2c_toolbox_free(k2c_toolbox *b) {
    if (!b) return;
    k2c_travel_free(b->travel);
    free(b->workdir);
    free(b->decl);
    free(b);
}

const char *k2c_toolbox_json(const k2c_toolbox *b) { return b->decl; }

int k2c_toolbox_has(const k2c_toolbox *b, const char *name) {
    for (int i = 0; i < NDECLS; i++) if (!strcmp(DECLS[i].name, name)) return (DECLS[i].group & b->groups) != 0;
    return 0;
}

int k2c_toolbox_reset(k2c_toolbox *b) {
    if (!(b->groups & K2C_TOOLS_TRAVEL)) return 0;
    k2c_travel *t = k2c_travel_new(b->seed);
    if (!t) return -1;
    k2c_travel_free(b->travel);
    b->travel = t;
    return 0;
}

char *k2c_toolbox_call(k2c_toolbox *b, const char *name, const char *args_json, int *is_error) {
    char *out = NULL;
    *is_error = 1;
    k2c_seterr("%s", "");
    int g = -1;
    for (int i = 0; i < NDECLS; i++) if (!strcmp(DECLS[i].name, name)) g = (int)DECLS[i].group;
    if (g < 0 || !((unsigned)g & b->groups)) {
        if (!strcmp(name, "write_file")) k2c_seterr("write_file is off (the agent was started without --allow-write)");
        else k2c_seterr("unknown tool '%s'", name);
    } else if (g == K2C_TOOLS_TRAVEL) out = k2c_travel_call(b->travel, name, args_json);
    else if (g == K2C_TOOLS_DATES || g == K2C_TOOLS_UNITS) out = k2c_env_tool(name, args_json);
    else { int e; out = k2c_builtin_tool(b->workdir, name, args_json, &e); }
    if (out) *is_error = 0;
    else if (!*k2c_errmsg()) k2c_seterr("out of memory");
    return out;
}

char *k2c_toolbox_state_json(const k2c_toolbox *b) {
    if (!b->travel) return strdup("{\"bookings\":[],\"spent\":0}");
    return k2c_travel_state_json(b->travel);
}
