/* k2c bench: prefill and decode speed of a checkpoint, and decode's effective memory traffic next to the
 * machine's measured read bandwidth. Decode reads every active weight once per token, so
 * GB/s = (bytes of attention + dense/shared FFN + k experts + router + head per token, plus the latent cache
 * the step reads once per layer) * tokens/s. --depth N measures decode after N cached positions. */
#include "cli.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* CPU seconds of the whole process (every thread): with --threads 1 a step's own work, whatever else runs. */
static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The read-bandwidth probe: a streaming read of 1 GB (far larger than the caches), held in transparent huge
 * pages as the weights are (--load auto), every thread reading its own contiguous part, 512-bit loads into four
 * independent XOR chains (so the loop is bound by memory, not by a dependency), best of five passes after a
 * first pass that only faults the pages in. */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static uint64_t read_pass_avx512(const uint64_t *p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = _mm512_xor_si512(a, _mm512_loadu_si512(p + i));
        b = _mm512_xor_si512(b, _mm512_loadu_si512(p + i + 8));
        c = _mm512_xor_si512(c, _mm512_loadu_si512(p + i + 16));
        d = _mm512_xor_si512(d, _mm512_loadu_si512(p + i + 24));
    }
    uint64_t out[8];
    _mm512_storeu_si512(out, _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d)));
    return out[0] ^ out[7];
}
__attribute__((target("avx2"))) static uint64_t read_pass_avx2(const uint64_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        a = _mm256_xor_si256(a, _mm256_loadu_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_loadu_si256((const __m256i *)(p + i + 4)));
        c = _mm256_xor_si256(c, _mm256_loadu_si256((const __m256i *)(p + i + 8)));
        d = _mm256_xor_si256(d, _mm256_loadu_si256((const __m256i *)(p + i + 12)));
    }
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d)));
    return out[0] ^ out[3];
}
#endif
static uint64_t read_pass(const uint64_t *p, size_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return read_pass_avx512(p, n);
    if (__builtin_cpu_supports("avx2")) return read_pass_avx2(p, n);
#endif
    uint64_t x0 = 0, x1 = 0, x2 = 0, x3 = 0;
    for (size_t i = 0; i + 4 <= n; i += 4) { x0 ^= p[i]; x1 ^= p[i + 1]; x2 ^= p[i + 2]; x3 ^= p[i + 3]; }
    return x0 ^ x1 ^ x2 ^ x3;
}

double k2c_measure_read_bandwidth(size_t bytes) {
    size_t n = bytes / 8;
    uint64_t *buf = aligned_alloc((size_t)2 << 20, n * 8), sink = 0;
    if (!buf) return 0;
#ifdef MADV_HUGEPAGE
    madvise(buf, n * 8, MADV_HUGEPAGE);     /* advice only: without huge pages the probe still runs */
#endif
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 0;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = k2c_now();
        #pragma omp parallel reduction(^ : sink)
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            size_t chunk = (n / nt) & ~(size_t)31;
            sink ^= read_pass(buf + chunk * id, chunk);
        }
        double gbs = (double)bytes / (k2c_now() - t0) / 1e9;
        if (rep > 0 && gbs > best) best = gbs;
    }
    free(buf);
    return sink == 42 ? best + 1e-12 : best;   /* keeps the reads alive */
}

static int cmd_bench(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "json,exact")) return 2;
    const char *dir = cli_need(&a, "model");
    int prompt = (int)cli_int(&a, "prompt", 128), gen = (int)cli_int(&a, "gen", 32), depth = (int)cli_int(&a, "depth", 0);
    /* --turn N: after the prompt (and the depth fill), a prefill of N more tokens on top of the cache, timed: what a
     * later chat turn costs behind that history (its new tokens only, attending to the cached ones) */
    int turn = (int)cli_int(&a, "turn", 0);
    const char *fill = cli_str(&a, "fill", "repeat");
    int json = cli_flag(&a, "json");
    uint64_t seed = (uint64_t)cli_int(&a, "seed", 1);
    /* --prefill-list 128,512: prefill each size --reps times on a fresh cache first (one load for all) */
    const char *plist_s = cli_str(&a, "prefill-list", NULL);
    int reps = (int)cli_int(&a, "reps", 1), nplist = 0, *plist = NULL;
    if (plist_s && !(plist = cli_parse_ids(plist_s, &nplist))) { cli_done(&a); return cli_fail("bench"); }
    if (reps < 1 || reps > 100) { free(plist); cli_done(&a); fprintf(stderr, "bench: --reps must be 1..100\n"); return 2; }
    for (int i = 0; i < nplist; i++)
        if (plist[i] < 1 || plist[i] > (1 << 20)) {
            free(plist); cli_done(&a); fprintf(stderr, "bench: --prefill-list sizes must be 1..1048576\n"); return 2;
        }
    if (turn < 0 || turn > (1 << 20) || prompt < 0 || prompt > (1 << 20) || depth < 0 || depth > (1 << 24) || gen < 0 ||
        gen > (1 << 20)) {
        free(plist);
        cli_done(&a);
        fprintf(stderr, "bench: --prompt, --gen and --turn must be 0..1048576, --depth 0..16777216\n");
        return 2;
    }
    k2c_model *m;
    if (!dir) { free(plist); cli_done(&a); return 2; }
    if (cli_load_model(&a, &m, dir) != 0) { free(plist); cli_done(&a); return cli_fail("bench"); }
    if (cli_done(&a)) { free(plist); k2c_model_close(m); return 2; }
    if (strcmp(fill, "repeat") && strcmp(fill, "prefill")) {
        free(plist);
        k2c_model_close(m);
        fprintf(stderr, "bench: --fill must be repeat or prefill\n");
        return 2;
    }
    k2c_model_info mi;
    k2c_model_get_info(m, &mi);
    const k2c_config *cf = k2c_model_config(m);
    int V = cf->vocab_size, rc = 1, nid = (prompt > depth ? prompt : depth) + turn;
    for (int i = 0; i < nplist; i++) nid = plist[i] > nid ? plist[i] : nid;
    double *plist_tok_s = calloc((size_t)(nplist > 0 ? nplist : 1), sizeof *plist_tok_s);
    int *ids = malloc((size_t)(nid > 0 ? nid : 1) * sizeof *ids);
    float *logits = malloc((size_t)V * sizeof *logits);
    k2c_state *s = NULL;
    if (!ids || !logits || !plist_tok_s || !(s = k2c_state_new(m, nid + gen + 2))) goto done;
    uint64_t r = seed;
    for (int i = 0; i < nid; i++) ids[i] = (int)(k2c_rng_next(&r) % (uint64_t)V);
    k2c_log("bench: %d threads, %s kernels; measuring read bandwidth...\n", mi.threads, mi.kernels);
    double bw = k2c_measure_read_bandwidth((size_t)1 << 30);
    for (int i = 0; i < nplist; i++) {
        double sum = 0;
        for (int k = 0; k < reps; k++) {
            k2c_log("\rbench: prefill %d tokens (%d/%d)...", plist[i], k + 1, reps);
            k2c_state_reset(s);
            double t0 = k2c_now();
            if (k2c_prefill(s, ids, plist[i], NULL, logits, NULL) != 0) goto done;
            sum += plist[i] / (k2c_now() - t0);
        }
        plist_tok_s[i] = sum / reps;
        k2c_log(" %.1f tok/s\n", plist_tok_s[i]);
    }
    k2c_state_reset(s);
    double tp = 0, pf = 0;
    if (prompt > 0) {
        k2c_log("bench: prefill %d tokens...\n", prompt);
        double t0 = k2c_now();
        /* a long prompt in pieces of whole ubatches (about 4096 tokens: the chunks the forward runs are those of
         * one call), with progress */
        int piece = (4096 + mi.ubatch - 1) / mi.ubatch * mi.ubatch;
        for (int t = 0; t < prompt; t += piece) {
            int n = prompt - t < piece ? prompt - t : piece;
            if (k2c_prefill(s, ids + t, n, NULL, logits, NULL) != 0) goto done;
            if (prompt > piece)
                k2c_log("\rbench: prefill %d/%d (%.1f tok/s)", t + n, prompt, (t + n) / (k2c_now() - t0));
        }
        if (prompt > piece) k2c_log("\n");
        tp = k2c_now() - t0;
        pf = prompt / tp;
    } else if (k2c_decode(s, 1, logits, NULL) != 0) goto done;
    /* --depth: decode after `depth` cached positions, filled by a real prefill of random ids (--fill prefill)
     * or by repeating the rows the prompt left (--fill repeat, seconds: same bytes and FLOPs per decode step) */
    double tf = 0;
    if (depth > k2c_state_pos(s)) {
        int have = k2c_state_pos(s);
        k2c_log("bench: fill the cache to %d positions (%s)...\n", depth, fill);
        double t0 = k2c_now();
        if (!strcmp(fill, "prefill") ? k2c_prefill(s, ids + have, depth - have, NULL, logits, NULL) != 0
                                     : k2c_state_fill_repeat(s, depth) != 0) goto done;
        tf = k2c_now() - t0;
    }
    double tt = 0;
    int turn_at = k2c_state_pos(s);
    if (turn > 0) {
        k2c_log("bench: a turn of %d new tokens after %d cached...\n", turn, turn_at);
        double t0 = k2c_now();
        if (k2c_prefill(s, ids + turn_at % (nid - turn + 1), turn, NULL, logits, NULL) != 0) goto done;
        tt = k2c_now() - t0;
    }
    int pos0 = k2c_state_pos(s) + 1;   /* first timed step attends to this many positions (after the warm-up) */
    /* warm-up step, then timed decode of gen tokens (greedy) */
    int next = 0;
    for (int i = 1; i < V; i++) if (logits[i] > logits[next]) next = i;
    if (k2c_decode(s, next, logits, NULL) != 0) goto done;
    k2c_log("bench: decode %d tokens...\n", gen);
    double t0 = k2c_now(), a0 = k2c_state_attn_seconds(s), c0 = cpu_seconds();
    for (int g = 0; g < gen; g++) {
        next = 0;
        for (int i = 1; i < V; i++) if (logits[i] > logits[next]) next = i;
        if (k2c_decode(s, next, logits, NULL) != 0) goto done;
        if (g % 8 == 7) k2c_log("\rbench: decode %d/%d (%.2f tok/s)", g + 1, gen, (g + 1) / (k2c_now() - t0));
    }
    double td = k2c_now() - t0, dec = gen / td, bytes = mi.decode_bytes, dec_cpu = gen / (cpu_seconds() - c0);
    double attn = (k2c_state_attn_seconds(s) - a0) / gen / cf->num_hidden_layers;   /* per layer and token */
    /* the latent cache each step reads once per layer: positions x one row (fp32, BF16 or q8_0) */
    double cache = (double)cf->num_hidden_layers * (double)k2c_cache_row_bytes(cf, mi.cache_type) * (pos0 + (gen - 1) / 2.0 + 1);
    double gbs = (bytes + cache) * dec / 1e9;
    k2c_log("\n");
    k2c_model_info ti;              /* the thread tuner's count after the run */
    k2c_model_get_info(m, &ti);
    if (json) {
        printf("{\"prefill_list\":[");
        for (int i = 0; i < nplist; i++) printf("%s{\"tokens\":%d,\"tok_s\":%.3f}", i ? "," : "", plist[i], plist_tok_s[i]);
        printf("],\"reps\":%d,", reps);
        printf("\"threads\":%d,\"prompt\":%d,\"prefill_tok_s\":%.3f,\"depth\":%d,\"fill\":\"%s\",\"fill_s\":%.3f,\"gen\":%d,"
               "\"decode_tok_s\":%.3f,\"decode_gb_per_token\":%.4f,\"cache_mb_per_token\":%.3f,"
               "\"decode_gb_s\":%.2f,\"read_bandwidth_gb_s\":%.2f,\"fraction_of_bandwidth\":%.3f,"
               "\"attn_ms_per_layer_token\":%.4f,\"cache_mb_per_layer_token\":%.4f,\"decode_cpu_tok_s\":%.3f,"
               "\"threads_now\":%d,\"tune_switches\":%ld,\"turn\":%d,\"turn_after\":%d,\"turn_s\":%.4f}\n",
               mi.threads, prompt, pf, pos0 - 1, fill, tf, gen, dec, bytes / 1e9, cache / 1e6, gbs, bw, gbs / bw,
               attn * 1e3, cache / 1e6 / cf->num_hidden_layers, dec_cpu * mi.threads, ti.threads_now, ti.tune_switches,
               turn, turn_at, tt);
    } else {
        printf("threads            %d (%s kernels%s, %s prompt products)\n", mi.threads, mi.kernels,
               mi.gguf ? (mi.exact ? ", fp32 activations" : ", int8 decode activations") : "", mi.prompt_products);
        for (int i = 0; i < nplist; i++)
            printf("prefill            %d tokens: %.1f tok/s (mean of %d, each on an empty cache)\n", plist[i], plist_tok_s[i], reps);
        if (prompt > 0) printf("prefill            %d tokens in %.2f s: %.1f tok/s\n", prompt, tp, pf);
        if (tf > 0) printf("cache fill         %d positions (%s) in %.2f s\n", turn_at, fill, tf);
        if (turn > 0) printf("turn               %d new tokens after %d cached in %.3f s: %.1f tok/s\n", turn, turn_at, tt, turn / tt);
        printf("decode             %d tokens at depth %d in %.2f s: %.2f tok/s\n", gen, pos0 - 1, td, dec);
        printf("decode (CPU time)  %.2f tok/s per %d thread(s): the process's CPU seconds, which a busy machine does not stretch\n",
               dec_cpu * mi.threads, mi.threads);
        if (ti.tune_switches)
            printf("thread tuner       decode ends on %d of %d threads (%ld changes; K2C_ADAPT_THREADS=0 keeps %d)\n",
                   ti.threads_now, mi.threads, ti.tune_switches, mi.threads);
        printf("decode traffic     %.3f GB/token weights + %.2f MB/token latent cache -> %.1f GB/s\n", bytes / 1e9,
               cache / 1e6, gbs);
        printf("read bandwidth     %.1f GB/s measured -> decode at %.0f%% of it\n", bw, 100 * gbs / bw);
        printf("attention          %.3f ms per layer and token (%.0f%% of the step), reading %.2f MB of cache per layer\n",
               attn * 1e3, 100 * attn * cf->num_hidden_layers * dec, cache / 1e6 / cf->num_hidden_layers);
    }
    rc = 0;
done:
    if (rc) cli_fail("bench");
    k2c_state_delete(s);
    free(ids);
    free(logits);
    free(plist);
    free(plist_tok_s);
    k2c_model_close(m);
    return rc;
}
CLI_COMMAND_ON(cmd_bench_def, CLI_EP, "bench",
            "--model DIR [--prompt N] [--gen N] [--depth N [--fill repeat|prefill]] [--turn N] [--prefill-list N,N.. [--reps R]] [--threads N] [--ubatch N] "
            "[--load auto|mmap|copy] [--exact] [--cache-type f32|bf16|q8_0] [--json]",
            "Prefill and decode tokens/s, and decode GB/s (weights + latent cache) next to the measured read bandwidth.\n"
            "--depth N decodes after N cached positions: filled by repeating the prompt's cache rows (repeat, seconds;\n"
            "the same bytes and arithmetic per step as N real tokens) or by a real prefill of random ids (prefill).\n"
            "--prefill-list times a prefill of each size (--reps times, on an empty cache) before that, with one load.\n"
            "--turn N times a prefill of N more tokens on top of the cache (a later chat turn) before the decode.", cmd_bench)
