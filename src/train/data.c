/* Token shards and the training-window sampler.
 *
 * A shard is  "K2CTOKS\0" | u32 version | u32 bytes per token (4) | u64 token count n | u32 ids [n] (LE)
 * and, in version 2, | u8 loss mask [n]: 1 where the token is a target that carries loss (an SFT
 * conversation's assistant tokens, all of plain text), 0 where it is only context (system, user, tool
 * results). Version 1 files (no mask: every token a target) still read; any other version is refused by
 * name. The mask belongs to the token as a target: window position t predicts token p+t+1, whose mask
 * decides whether targets[t] is that token or -1 (no loss, no gradient). Bit 1 of a mask byte marks the
 * first token of a conversation: when a dataset has such marks, windows start at them (a window that began
 * mid-conversation would train answers without their question), one conversation drawn per window.
 * `k2c data prepare` writes DIR/train_NNN.bin and DIR/val_NNN.bin; the trainer maps every shard with a
 * prefix and sees their concatenation. Window idx of a run starts at a position that depends only on
 * (seed, idx), so a resumed run reads exactly the windows the uninterrupted run would have read and
 * the loader needs no state in the checkpoint beyond the step counter. */
#include "train/train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 24
static const char MAGIC[8] = {'K', '2', 'C', 'T', 'O', 'K', 'S', 0};

int k2c_shard_write(const char *path, const uint32_t *ids, uint64_t n) { return k2c_shard_write_masked(path, ids, NULL, n); }

int k2c_shard_write_masked(const char *path, const uint32_t *ids, const uint8_t *mask, uint64_t n) {
    size_t len = HDR + (size_t)n * 4 + (mask ? (size_t)n : 0);
    uint8_t *buf = malloc(len);
    if (!buf) { k2c_seterr("out of memory for shard %s", path); return -1; }
    memcpy(buf, MAGIC, 8);
    uint32_t ver = mask ? 2 : 1, tb = 4;
    memcpy(buf + 8, &ver, 4);      /* the project targets little-endian hosts (as safetensors does) */
    memcpy(buf + 12, &tb, 4);
    memcpy(buf + 16, &n, 8);
    memcpy(buf + HDR, ids, (size_t)n * 4);
    for (uint64_t i = 0; mask && i < n; i++) buf[HDR + (size_t)n * 4 + i] = mask[i] & 3;
    int rc = k2c_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int open_shard(k2c_dataset *d, const char *path) {
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) { k2c_seterr("%s: %s", path, strerror(errno)); if (fd >= 0) close(fd); return -1; }
    if (sb.st_size < HDR) { close(fd); k2c_seterr("%s: not a token shard (%lld bytes)", path, (long long)sb.st_size); return -1; }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { k2c_seterr("%s: mmap: %s", path, strerror(errno)); return -1; }
    const uint8_t *p = map;
    uint32_t ver, tb;
    uint64_t n;
    memcpy(&ver, p + 8, 4); memcpy(&tb, p + 12, 4); memcpy(&n, p + 16, 8);
    uint64_t body = (uint64_t)sb.st_size - HDR, per = ver == 2 ? 5 : 4;   /* bytes per token: id (+ mask) */
    char vbuf[96];
    snprintf(vbuf, sizeof vbuf, "unsupported version %u (this build reads 1: ids, and 2: ids + loss mask)", ver);
    const char *why = memcmp(p, MAGIC, 8) ? "bad magic" : ver != 1 && ver != 2 ? vbuf : tb != 4 ? "token size is not 4"
                    : n != body / per || body % per ? "token count does not match the size" : NULL;
    if (why) { munmap(map, (size_t)sb.st_size); k2c_seterr("%s: not a k2c token shard: %s", path, why); return -1; }
    int i = d->nshards++;
    d->tok[i] = (uint32_t *)(p + HDR);
    d->mask[i] = ver == 2 ? p + HDR + (size_t)n * 4 : NULL;
    d->masked |= ver == 2;
    d->ntok[i] = n;
    d->map[i] = map;
    d->mapsz[i] = (size_t)sb.st_size;
    d->total += n;
    return 0;
}

int k2c_dataset_open(k2c_dataset *d, const char *dir, const char *prefix) {
    memset(d, 0, sizeof *d);
    DIR *dp = opendir(dir);
    if (!dp) { k2c_seterr("%s: %s", dir, strerror(errno)); return -1; }
    char **names = NULL;
    int n = 0, cap = 0, rc = -1;
    size_t pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(dp))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, pl) || l < 4 || strcmp(e->d_name + l - 4, ".bin")) continue;
        if (n == cap) {
            char **nn = realloc(names, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    if (!n) { k2c_seterr("%s: no %s*.bin token shards (run 'k2c data prepare')", dir, prefix); goto done; }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    d->tok = calloc((size_t)n, sizeof *d->tok); d->ntok = calloc((size_t)n, sizeof *d->ntok);
    d->map = calloc((size_t)n, sizeof *d->map); d->mapsz = calloc((size_t)n, sizeof *d->mapsz);
    d->mask = calloc((size_t)n, sizeof *d->mask);
    if (!d->tok || !d->ntok || !d->map || !d->mapsz || !d->mask) { k2c_seterr("out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        char *p = k2c_path_join(dir, names[i]);
        int r = p ? open_shard(d, p) : -1;
        free(p);
        if (r) goto done;
    }
    /* conversation starts (mask bit 1), in order over the concatenation */
    uint64_t base = 0, cap2 = 0;
    for (int s = 0; s < d->nshards; base += d->ntok[s], s++)
        for (uint64_t i = 0; d->mask[s] && i < d->ntok[s]; i++) {
            if (!(d->mask[s][i] & 2)) continue;
            if (d->nstarts == cap2) {
                uint64_t *ns = realloc(d->starts, (size_t)(cap2 = cap2 ? 2 * cap2 : 1024) * sizeof *ns);
                if (!ns) { k2c_seterr("out of memory"); goto done; }
                d->starts = ns;
            }
            d->starts[d->nstarts++] = base + i;
        }
    rc = 0;
done:
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc) k2c_dataset_close(d);
    return rc;
}

void k2c_dataset_close(k2c_dataset *d) {
    for (int i = 0; i < d->nshards; i++) munmap(d->map[i], d->mapsz[i]);
    free(d->tok); free(d->ntok); free(d->map); free(d->mapsz); free(d->mask); free(d->starts);
    memset(d, 0, sizeof *d);
}

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* token i of the concatenation; *m gets its loss mask (1 for a version-1 shard) */
static uint32_t at(const k2c_dataset *d, uint64_t i, int *m) {
    for (int s = 0; s < d->nshards; s++) {
        if (i < d->ntok[s]) { *m = d->mask[s] ? d->mask[s][i] & 1 : 1; return d->tok[s][i]; }
        i -= d->ntok[s];
    }
    *m = 0;
    return 0;
}

/* ids = tokens [p, p+T), targets = [p+1, p+T] (-1 where the target's mask is 0); a dataset shorter than
 * T+1 wraps around. */
void k2c_dataset_window(const k2c_dataset *d, uint64_t seed, uint64_t idx, int T, int *ids, int *targets) {
    uint64_t span = d->total > (uint64_t)T + 1 ? d->total - (uint64_t)T : 1;
    uint64_t p = d->nstarts ? d->starts[mix(mix(seed) ^ idx) % d->nstarts] : mix(mix(seed) ^ idx) % span;
    for (int t = 0; t < T; t++) {
        int m;
        ids[t] = (int)at(d, (p + t) % d->total, &m);
        uint32_t y = at(d, (p + t + 1) % d->total, &m);
        targets[t] = m ? (int)y : -1;
    }
}
