/* Shared by the libFuzzer harnesses (fuzz/fuzz_*.c): a per-process scratch folder in /dev/shm for the
 * readers that take a path, splitting one input into several files, and a hard assertion. */
#ifndef K2C_FUZZ_UTIL_H
#define K2C_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "serve/serve.h"

/* An input holding several files separates them with this line. */
#define FZ_SEP "\n#--#\n"
#define FZ_MAXPARTS 8

#define FZ_CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "fuzz check failed: %s (%s:%d): ", #cond, __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } } while (0)

/* K2C_FUZZ_VERBOSE=1: print why an input was rejected (to check that seeds get past the parsers). */
static void fz_rejected(const char *what) {
    static int v = -1;
    if (v < 0) v = getenv("K2C_FUZZ_VERBOSE") != NULL;
    if (v) fprintf(stderr, "rejected by %s: %s\n", what, k2c_errmsg());
}
static void fz_accepted(const char *what) {
    if (getenv("K2C_FUZZ_VERBOSE")) fprintf(stderr, "accepted by %s\n", what);
}

static char fz_root[256];

static void fz_cleanup(void) {
    if (!fz_root[0]) return;
    DIR *d = opendir(fz_root);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", fz_root, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(fz_root);
}

/* The scratch folder, created on first use and removed at exit. */
static const char *fz_dir(void) {
    if (!fz_root[0]) {
        struct stat sb;
        const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(fz_root, sizeof fz_root, "%s/k2c-fuzz-%d", base, (int)getpid());
        mkdir(fz_root, 0700);
        atexit(fz_cleanup);
    }
    return fz_root;
}

static const char *fz_path(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", fz_dir(), name);
    return p;
}

static void fz_write(const char *name, const void *data, size_t n) {
    FILE *f = fopen(fz_path(name), "wb");
    if (!f) { perror(fz_path(name)); abort(); }
    if (n && fwrite(data, 1, n, f) != n) { perror("write"); abort(); }
    fclose(f);
}

static void fz_unlink(const char *name) { unlink(fz_path(name)); }

/* Removes every file of the scratch folder (between runs). */
static void fz_clear(void) {
    const char *root = fz_dir();
    DIR *d = opendir(root);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", root, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
}

/* Splits data at FZ_SEP into at most max parts (the last takes the rest). Returns the count. */
static int fz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, int max) {
    const size_t sl = sizeof FZ_SEP - 1;
    int n = 0;
    const uint8_t *p = data, *end = data + size;
    while (n < max - 1) {
        const uint8_t *q = memmem(p, (size_t)(end - p), FZ_SEP, sl);
        if (!q) break;
        part[n] = p; len[n] = (size_t)(q - p); n++;
        p = q + sl;
    }
    part[n] = p; len[n] = (size_t)(end - p); n++;
    return n;
}

static char *fz_strndup(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* A small deterministic generator for split points etc. */
static uint32_t fz_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}
#endif
