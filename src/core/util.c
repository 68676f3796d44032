/* Errors, logging, time and small file helpers shared by the whole library. */
#include "core/core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* One message per thread: a failing call sets it, the caller (usually the CLI) prints it. */
static _Thread_local char errbuf[K2C_ERRMSG_MAX];

void k2c_seterr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
}

const char *k2c_errmsg(void) { return errbuf[0] ? errbuf : "unknown error"; }

void k2c_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

double k2c_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *k2c_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) { k2c_seterr("%s: %s", path, strerror(errno)); return NULL; }
    if (fseek(f, 0, SEEK_END) != 0) goto io;
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) goto io;
    buf = malloc((size_t)n + 1);
    if (!buf) { k2c_seterr("%s: out of memory (%ld bytes)", path, n); goto fail; }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) goto io;
    buf[n] = 0;
    if (len) *len = (size_t)n;
    fclose(f);
    return buf;
io:
    k2c_seterr("%s: read error: %s", path, strerror(errno));
fail:
    free(buf);
    fclose(f);
    return NULL;
}

/* Readers of PATH see either the old file or the complete new one, never a torn write:
 * the bytes go to PATH.tmp.PID, are fsync'ed, then renamed over PATH. */
int k2c_write_file_atomic(const char *path, const void *data, size_t len) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) { k2c_seterr("out of memory"); return -1; }
    snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { k2c_seterr("%s: %s", tmp, strerror(errno)); free(tmp); return -1; }
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) { if (errno == EINTR) continue; goto fail; }
        p += w; len -= (size_t)w;
    }
    if (fsync(fd) != 0) goto fail;
    if (close(fd) != 0) { fd = -1; goto fail; }
    fd = -1;
    if (rename(tmp, path) != 0) goto fail;
    free(tmp);
    return 0;
fail:
    k2c_seterr("%s: write failed: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

char *k2c_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

size_t k2c_proc_kb(const char *file, const char *key) {
    FILE *f = fopen(file, "r");
    char line[256];
    size_t kb = 0, kl = strlen(key);
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') { kb = (size_t)strtoull(line + kl + 1, NULL, 10); break; }
    fclose(f);
    return kb * 1024;
}

int k2c_map_file(const char *path, k2c_load_mode mode, size_t min_size, const char *what, void **map_out, size_t *size_out) {
    struct stat sb;
    void *map = MAP_FAILED;
    int fd = open(path, O_RDONLY);
    if (fd < 0) { k2c_seterr("%s: %s", path, strerror(errno)); return -1; }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { k2c_seterr("%s: not a regular file", path); goto fail; }
    size_t size = (size_t)sb.st_size;
    if (size < min_size || size == 0) {
        k2c_seterr("%s: %zu bytes, too short for a %s (truncated?)", path, size, what);
        goto fail;
    }
    /* auto: copy while the file takes under half of the memory still available, so a model that fits
     * gets huge pages and one larger than RAM stays mapped (later shards see less memory available). */
    int copy = mode == K2C_LOAD_COPY || (mode == K2C_LOAD_AUTO && size < k2c_proc_kb("/proc/meminfo", "MemAvailable") / 2);
    if (copy) {
        /* Anonymous memory on transparent huge pages: decode streams weights faster without 4 KB TLB
         * misses, at the price of reading the whole file at load time and holding it in RAM. */
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) { k2c_seterr("%s: cannot allocate %zu bytes: %s", path, size, strerror(errno)); goto fail; }
        madvise(map, size, MADV_HUGEPAGE);
        size_t got = 0;
        while (got < size) {
            ssize_t r = pread(fd, (char *)map + got, size - got > (1u << 30) ? (1u << 30) : size - got, (off_t)got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) { k2c_seterr("%s: read: %s", path, r < 0 ? strerror(errno) : "unexpected end of file"); goto fail; }
            got += (size_t)r;
        }
    } else {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) { k2c_seterr("%s: mmap: %s", path, strerror(errno)); goto fail; }
    }
    close(fd);
    *map_out = map;
    *size_out = size;
    return 0;
fail:
    if (map != MAP_FAILED) munmap(map, (size_t)sb.st_size);
    close(fd);
    return -1;
}

void k2c_comm_block(size_t n, int size, int r, size_t *lo, size_t *hi) {
    size_t base = n / (size_t)size, extra = n % (size_t)size, rr = (size_t)r;
    *lo = rr * base + (rr < extra ? rr : extra);
    *hi = *lo + base + (rr < extra ? 1 : 0);
}

uint64_t k2c_fnv64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
