/* OpenAI-compatible HTTP server on libmicrohttpd.
 *
 * Threads: libmicrohttpd runs one thread per connection (handlers may block: a non-streaming request
 * waits for its job, a streaming response's reader waits for the next SSE bytes); one scheduler thread
 * owns the model. Jobs go from the HTTP threads to the scheduler through a bounded queue; the scheduler
 * gives each job a slot (a k2c_state), prefills it, and then runs every busy slot's next token through
 * one forward pass (with a chunk of the oldest prompt still going in: k2c_decode_batch_prefill), so the
 * weights are read once per step for all requests. A job is shared by its
 * HTTP thread and the scheduler (reference counted); a streaming client that goes away marks it
 * cancelled, and the scheduler frees the slot at its next step.
 *
 * Prefix cache: a slot keeps the token ids whose latent KV rows it holds after its job ends. A new job
 * takes the free slot whose history shares the longest prefix with its prompt; if another slot (busy
 * or not) shares more, those rows are copied over (rows below a slot's pos never change). Only the
 * rest of the prompt is prefilled. */
#include "serve/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */
/* Constant-time comparison: the time depends only on the length of the expected key. */
static int key_equal(const char *got, const char *want) {
    size_t gl = strlen(got), wl = strlen(want);
    unsigned char d = (unsigned char)(gl != wl);
    for (size_t i = 0; i < wl; i++) d |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
    return d == 0;
}

/* Copy with invalid UTF-8 replaced by U+FFFD: jansson (and clients) need valid strings, and a random
 * or confused model can emit any bytes. */
char *srv_utf8_clean(const char *s, size_t n, size_t *out_len) {
    char *o = malloc(3 * n + 1);
    if (!o) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        int need = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        int ok = need >= 0 && i + (size_t)need < n + 0;
        if (ok && need) {
            unsigned char c1 = (unsigned char)s[i + 1];
            unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
            ok = c1 >= lo && c1 <= hi;
            for (int k = 2; ok && k <= need; k++) ok = ((unsigned char)s[i + (size_t)k] & 0xC0) == 0x80;
        }
        if (!ok) { memcpy(o + j, "\xEF\xBF\xBD", 3); j += 3; i++; continue; }
        memcpy(o + j, s + i, (size_t)need + 1);
        j += (size_t)need + 1;
        i += (size_t)need + 1;
    }
    o[j] = 0;
    if (out_len) *out_len = j;
    return o;
}

char *k2c_utf8_clean(const char *s, size_t n) { return srv_utf8_clean(s, n, NULL); }

static json_t *jstr_clean(const char *s, size_t n) {
    size_t m;
    char *c = srv_utf8_clean(s, n, &m);
    json_t *j = c ? json_stringn(c, m) : NULL;
    free(c);
    return j ? j : json_string("");
}

/* ------------------------------------------------------------------ jobs */
static void job_unref(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    k2c_turn_free(j->gen);
    free(j->prompt);
    for (int i = 0; i < j->nstops; i++) free(j->stops[i]);
    free(j->stops);
    free(j->sse);
    free(j->args_sent);
    free(j->result);
    free(j->model_name);
    free(j->warning);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void sse_add(srv_job *j, const char *s, size_t n) {
    pthread_mutex_lock(&j->mu);
    if (j->sse_len + n + 1 > j->sse_cap) {
        size_t cap = j->sse_cap ? j->sse_cap : 1024;
        while (cap < j->sse_len + n + 1) cap *= 2;
        char *ns = realloc(j->sse, cap);
        if (!ns) { pthread_mutex_unlock(&j->mu); return; }   /* dropped chunk; the stream still ends */
        j->sse = ns;
        j->sse_cap = cap;
    }
    memcpy(j->sse + j->sse_len, s, n);
    j->sse_len += n;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void sse_json(srv_job *j, json_t *o) {
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt) return;
    sse_add(j, "data: ", 6);
    sse_add(j, txt, strlen(txt));
    sse_add(j, "\n\n", 2);
    free(txt);
}

static json_t *chunk_base(srv_job *j) {
    return json_pack("{s:s,s:s,s:I,s:s}", "id", j->id, "object", j->chat ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)j->created, "model", j->model_name);
}

/* OpenAI's logprobs entry of one token: its text, log-probability, bytes and the top alternatives. */
static json_t *lp_token(const k2c_tokenizer *t, int id, float lp) {
    size_t n = 0;
    const char *b = k2c_tokenizer_token(t, id, &n);
    json_t *bytes = json_array();
    for (size_t i = 0; b && i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)b[i]));
    return json_pack("{s:o,s:f,s:o}", "token", jstr_clean(b ? b : "", b ? n : 0), "logprob", (double)lp, "bytes", bytes);
}

/* Entries [from, ...) whose text ends within `upto` content bytes (bytes counted from *covered);
 * advances *from / *covered. The content a stop string cut off has no entries. */
static json_t *lp_content(srv_job *j, int *from, size_t *covered, size_t upto) {
    json_t *arr = json_array();
    for (; *from < k2c_turn_nlogprobs(j->gen); (*from)++) {
        const k2c_turn_logprob *e = k2c_turn_logprob_at(j->gen, *from);
        size_t n = 0;
        k2c_tokenizer_token(j->tok, e->id, &n);
        if (*covered + n > upto) break;
        *covered += n;
        json_t *o = lp_token(j->tok, e->id, e->logprob), *top = json_array();
        for (int i = 0; i < e->ntop; i++) json_array_append_new(top, lp_token(j->tok, e->top_id[i], e->top_logprob[i]));
        json_object_set_new(o, "top_logprobs", top);
        json_array_append_new(arr, o);
    }
    return json_pack("{s:o,s:n}", "content", arr, "refusal");
}

static void sse_delta_lp(srv_job *j, json_t *delta, const char *finish, json_t *lp) {
    json_t *o = chunk_base(j), *ch;
    if (j->chat) ch = json_pack("{s:i,s:o,s:o,s:o}", "index", 0, "delta", delta, "logprobs", lp ? lp : json_null(),
                                "finish_reason", finish ? json_string(finish) : json_null());
    else {
        json_t *t = json_object_get(delta, "content");
        ch = json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "text", t ? json_incref(t) : json_string(""), "logprobs", "finish_reason",
                       finish ? json_string(finish) : json_null());
        json_decref(delta);
        json_decref(lp);
    }
    json_object_set_new(o, "choices", json_pack("[o]", ch));
    sse_json(j, o);
}

static void sse_delta(srv_job *j, json_t *delta, const char *finish) { sse_delta_lp(j, delta, finish, NULL); }

/* Streams what the generation added since the last call; handles stop strings. final: the turn is over. */
static void job_progress(srv_job *j, int final) {
    k2c_toolparse *p = k2c_turn_parser(j->gen);
    size_t clen;
    const char *content = k2c_toolparse_content(p, &clen);
    size_t end = clen;
    if (j->nstops && !j->stopped) {
        size_t from = j->content_sent > j->maxstop ? j->content_sent - j->maxstop : 0, hit = (size_t)-1;
        for (int i = 0; i < j->nstops; i++) {
            const char *m = clen > from ? memmem(content + from, clen - from, j->stops[i], strlen(j->stops[i])) : NULL;
            if (m && (size_t)(m - content) < hit) hit = (size_t)(m - content);
        }
        if (hit != (size_t)-1) {
            j->stopped = 1;
            j->content_end = hit;
            k2c_turn_stop(j->gen, "stop");
            final = 1;
        } else if (!final) end = clen > j->maxstop - 1 ? clen - (j->maxstop - 1) : 0;
    }
    if (j->stopped) end = j->content_end;
    if (end < j->content_sent) end = j->content_sent;
    if (!final) while (end > j->content_sent && ((unsigned char)content[end] & 0xC0) == 0x80 && end < clen) end--;
    if (!j->stopped) j->content_end = end;
    if (!j->stream) return;
    if (!j->role_sent && j->chat) {
        j->role_sent = 1;
        sse_delta(j, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
    }
    if (end > j->content_sent) {
        json_t *lp = j->logprobs && j->chat ? lp_content(j, &j->lp_sent, &j->lp_bytes, end) : NULL;
        sse_delta_lp(j, json_pack("{s:o}", "content", jstr_clean(content + j->content_sent, end - j->content_sent)), NULL, lp);
        j->content_sent = end;
    }
    if (!j->chat) return;
    int n = k2c_toolparse_ncalls(p);
    if (n > j->nargs_sent) {
        size_t *na = realloc(j->args_sent, (size_t)n * sizeof *na);
        if (!na) return;
        for (int i = j->nargs_sent; i < n; i++) na[i] = 0;
        j->args_sent = na;
        j->nargs_sent = n;
    }
    for (int i = 0; i < n; i++) {
        const k2c_tool_call *c = k2c_toolparse_call(p, i);
        size_t alen;
        const char *args = k2c_turn_args(j->gen, i, &alen);
        if (i >= j->calls_announced) {
            j->calls_announced = i + 1;
            json_t *tc = json_pack("{s:i,s:s,s:s,s:{s:s,s:s}}", "index", i, "id", c->id, "type", "function", "function",
                                   "name", c->name, "arguments", "");
            sse_delta(j, json_pack("{s:[o]}", "tool_calls", tc), NULL);
        }
        if (alen > j->args_sent[i]) {
            json_t *tc = json_pack("{s:i,s:{s:o}}", "index", i, "function", "arguments",
                                   jstr_clean(args + j->args_sent[i], alen - j->args_sent[i]));
            sse_delta(j, json_pack("{s:[o]}", "tool_calls", tc), NULL);
            j->args_sent[i] = alen;
        }
    }
}

static json_t *usage_json(const srv_job *j) {
    return json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", j->nprompt, "completion_tokens", j->ntok,
                     "total_tokens", j->nprompt + j->ntok, "prompt_tokens_details", "cached_tokens", j->cached);
}

/* The job's end: last deltas, the final chunk and usage (stream) or the whole response (not). */
static void job_finish(srv *s, srv_job *j, const char *err) {
    j->ntok = k2c_turn_ntokens(j->gen);
    const char *finish = k2c_turn_finish_reason(j->gen);
    if (!finish) finish = "stop";
    if (!err) job_progress(j, 1);
    if (j->stream) {
        if (err) sse_json(j, json_pack("{s:{s:s,s:s}}", "error", "message", err, "type", "server_error"));
        else {
            sse_delta(j, json_object(), finish);
            if (j->include_usage) {   /* stream_options.include_usage: one last chunk, no choices */
                json_t *u = chunk_base(j);
                json_object_set_new(u, "choices", json_array());
                json_object_set_new(u, "usage", usage_json(j));
                sse_json(j, u);
            }
        }
        sse_add(j, "data: [DONE]\n\n", 14);
    } else if (err) {
        j->status = 500;
        j->result = srv_error_json(err, "server_error", NULL);
    } else {
        k2c_toolparse *p = k2c_turn_parser(j->gen);
        size_t clen;
        const char *content = k2c_toolparse_content(p, &clen);
        if (j->content_end < clen) clen = j->content_end;
        json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "id", j->id, "object", j->chat ? "chat.completion" : "text_completion",
                              "created", (json_int_t)j->created, "model", j->model_name), *ch;
        if (j->chat) {
            json_t *msg = json_pack("{s:s,s:o}", "role", "assistant", "content", jstr_clean(content, clen));
            if (k2c_toolparse_ncalls(p) > 0) {
                char *tcj = k2c_toolparse_json(p);
                json_t *tc = tcj ? json_loads(tcj, 0, NULL) : NULL;
                free(tcj);
                if (tc) json_object_set_new(msg, "tool_calls", tc);
                if (!clen) json_object_set(msg, "content", json_null());
            }
            int from = 0;
            size_t covered = 0;
            ch = json_pack("{s:i,s:o,s:o,s:s}", "index", 0, "message", msg, "logprobs",
                           j->logprobs ? lp_content(j, &from, &covered, clen) : json_null(), "finish_reason", finish);
        } else ch = json_pack("{s:i,s:o,s:n,s:s}", "index", 0, "text", jstr_clean(content, clen), "logprobs", "finish_reason", finish);
        json_object_set_new(o, "choices", json_pack("[o]", ch));
        json_object_set_new(o, "usage", usage_json(j));
        j->result = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        j->status = j->result ? 200 : 500;
    }
    pthread_mutex_lock(&s->mu);
    s->m_completion_tokens += (uint64_t)j->ntok;
    s->m_prompt_tokens += (uint64_t)j->nprompt;
    s->m_cached_tokens += (uint64_t)j->cached;
    if (j->cancelled) s->m_cancelled++;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* ------------------------------------------------------------------ scheduler */
static int lcp(const int *a, int na, const int *b, int nb) {
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Gives job j a slot: reuses the longest cached prefix, prefills the rest. 0, or -1 (error set). */
static int admit(srv *s, srv_job *j, srv_slot **out) {
    int best_free = -1, best_free_len = -1, best_any = -1, best_any_len = 0;
    for (int i = 0; i < s->nslots; i++) {
        srv_slot *sl = &s->slots[i];
        int l = lcp(sl->hist, sl->st.pos, j->prompt, j->nprompt);
        if (!sl->job && l > best_free_len) { best_free = i; best_free_len = l; }
        if (l > best_any_len) { best_any = i; best_any_len = l; }
    }
    if (best_free < 0) { k2c_seterr("internal: no free slot"); return -1; }
    srv_slot *sl = &s->slots[best_free];
    int reuse = best_free_len;
    if (best_any >= 0 && best_any_len > reuse) {
        /* copy the longer prefix's latent rows from the slot that has them; the copy allocates the cache pages
         * this slot lacks, and if it cannot, the slot keeps its own rows (and prefills the rest) */
        const srv_slot *src = &s->slots[best_any];
        if (k2c_state_copy_prefix(&sl->st, &src->st, best_any_len) == 0) {
            memcpy(sl->hist, src->hist, (size_t)best_any_len * sizeof(int));
            reuse = best_any_len;
        }
    }
    if (reuse >= j->nprompt) reuse = j->nprompt - 1;   /* the last prompt token must run for its logits */
    sl->st.pos = reuse;
    /* hist beyond st.pos is not trusted by the prefix search (it stops at st.pos), so the whole prompt
     * can go in now while the rows arrive chunk by chunk */
    memcpy(sl->hist + reuse, j->prompt + reuse, (size_t)(j->nprompt - reuse) * sizeof(int));
    j->cached = reuse;
    sl->job = j;
    sl->admitted = ++s->admissions;
    sl->cur = NULL;   /* prefilling: the scheduler's chunks (prefill_alone, or beside the decodes) bring it in */
    *out = sl;
    return 0;
}

static void release(srv *s, srv_slot *sl) {
    srv_job *j = sl->job;
    sl->job = NULL;
    pthread_mutex_lock(&s->mu);
    s->busy--;
    pthread_mutex_unlock(&s->mu);
    job_unref(j);
}

/* Continuous batching: prompts are prefilled in chunks, so a long prompt arriving while others stream
 * delays each of their tokens by one chunk's arithmetic instead of the whole prompt's. While any slot
 * decodes, a step carries one chunk of --prefill-chunk tokens (16) of the oldest prompt still prefilling in
 * the same forward pass as the decode tokens (k2c_decode_batch_prefill: the weights are read once for
 * both; the step's time counts as decode time in /metrics). Its size is measured (bench/server_latency.sh,
 * docs/BENCHMARKS.md): the stall a chunk adds to every stream's next token grows with its tokens and with
 * the depth they attend to, and with 16 streams the p99 inter-token gap while a 4k prompt goes in stays
 * within 2x of the steady one at 16 tokens a step, not at 32 or 64. With no slot decoding nobody waits on the step: it prefills a whole ubatch (512 tokens,
 * or the chunk if larger) of as many waiting prompts as fit, so a lone long prompt gets its first token as
 * fast as a plain prefill and the next step still lets newcomers in. Chunk boundaries so depend on what
 * else runs; like a decode batch's split of the attention work, that changes rounding in the last bits
 * only, so a greedy answer is the same batched or alone except where two logits tie that closely. */
static int chunk_of(const srv *s, int decoding) {
    int chunk = s->opts.prefill_chunk == 0 ? 16 : s->opts.prefill_chunk;
    if (chunk < 0) return INT32_MAX;
    return decoding || chunk >= K2C_UBATCH_DEFAULT ? chunk : K2C_UBATCH_DEFAULT;
}

/* The slot whose prompt a step goes on with: of those still prefilling, the one admitted first (a prompt
 * arriving later, whatever slot it got, waits its turn instead of overtaking), or NULL. */
static srv_slot *prefilling(srv *s) {
    srv_slot *best = NULL;
    for (int i = 0; i < s->nslots; i++)
        if (s->slots[i].job && !s->slots[i].cur && (!best || s->slots[i].admitted < best->admitted)) best = &s->slots[i];
    return best;
}

/* A step with nothing to decode: chunks of waiting prompts up to one chunk's budget in all. */
static void prefill_alone(srv *s) {
    int budget = chunk_of(s, 0);
    for (int i = 0; i < s->nslots && budget > 0; i++) {
        srv_slot *sl = &s->slots[i];
        srv_job *j = sl->job;
        if (!j || sl->cur) continue;
        int left = j->nprompt - sl->st.pos, take = left > budget ? budget : left;
        double t0 = k2c_now();
        if (k2c_prefill(&sl->st, j->prompt + sl->st.pos, take, NULL, take == left ? sl->logits : NULL, NULL) != 0) {
            job_finish(s, j, k2c_errmsg());
            release(s, sl);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        s->m_prefill_s += k2c_now() - t0;
        s->m_prefill_chunks++;
        pthread_mutex_unlock(&s->mu);
        if (take == left) sl->cur = sl->logits;
        budget -= take;
    }
}

static void *scheduler(void *arg) {
    srv *s = arg;
    int V = s->model.cfg.vocab_size;
    k2c_state **states = calloc((size_t)s->nslots, sizeof *states);
    int *ids = calloc((size_t)s->nslots, sizeof *ids);
    srv_slot **batch = calloc((size_t)s->nslots, sizeof *batch);
    if (!states || !ids || !batch) { k2c_log("server: out of memory in the scheduler\n"); goto done; }
    for (;;) {
        /* take waiting jobs while slots are free */
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && !s->queue && s->busy == 0) pthread_cond_wait(&s->cv, &s->mu);
        int stopping = s->stopping;
        srv_job *take[64];
        int ntake = 0;
        while (s->queue && s->busy + ntake < s->nslots && ntake < 64) {
            take[ntake++] = s->queue;
            s->queue = s->queue->next;
            s->nqueue--;
        }
        s->busy += ntake;
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < ntake; i++) {
            srv_job *j = take[i];
            srv_slot *sl = NULL;
            pthread_mutex_lock(&j->mu);
            int gone = j->cancelled;
            pthread_mutex_unlock(&j->mu);
            if (stopping || gone || k2c_now() > j->deadline) {
                k2c_turn_stop(j->gen, "length");
                job_finish(s, j, NULL);
                pthread_mutex_lock(&s->mu); s->busy--; pthread_mutex_unlock(&s->mu);
                job_unref(j);
                continue;
            }
            if (admit(s, j, &sl) != 0) {
                job_finish(s, j, k2c_errmsg());
                pthread_mutex_lock(&s->mu); s->busy--; pthread_mutex_unlock(&s->mu);
                job_unref(j);
            }
        }
        /* one token for every slot whose prompt is in */
        int n = 0;
        double now = k2c_now();
        for (int i = 0; i < s->nslots; i++) {
            srv_slot *sl = &s->slots[i];
            srv_job *j = sl->job;
            if (!j) continue;
            int cancelled;
            pthread_mutex_lock(&j->mu);
            cancelled = j->cancelled;
            pthread_mutex_unlock(&j->mu);
            if (cancelled || stopping || now > j->deadline) {
                k2c_turn_stop(j->gen, "length");
                job_finish(s, j, NULL);
                release(s, sl);
                continue;
            }
            if (!sl->cur) continue;   /* still prefilling */
            int id = -1, rc = k2c_turn_step(j->gen, sl->cur, &id);
            if (rc < 0) { job_finish(s, j, k2c_errmsg()); release(s, sl); continue; }
            if (rc == 1) job_progress(j, 0);
            if (rc == 0 || j->stopped) { job_finish(s, j, NULL); release(s, sl); continue; }
            sl->hist[sl->st.pos] = id;
            states[n] = &sl->st;
            ids[n] = id;
            batch[n++] = sl;
        }
        if (!n) {
            prefill_alone(s);
        } else {
            /* the decodes, and a chunk of the oldest prompt still going in (continuous batching, above) */
            srv_slot *ps = prefilling(s);
            int take = 0, left = 0;
            if (ps) {
                int chunk = chunk_of(s, n);
                left = ps->job->nprompt - ps->st.pos;
                take = left > chunk ? chunk : left;
            }
            double t0 = k2c_now();
            int rc = k2c_decode_batch_prefill(states, ids, n, ps ? &ps->st : NULL, ps ? ps->job->prompt + ps->st.pos : NULL,
                                              take, s->batch_logits, take && take == left ? ps->logits : NULL);
            if (rc == -1) {     /* nothing advanced: every request of the step fails */
                const char *e = k2c_errmsg();
                for (int i = 0; i < n; i++) { job_finish(s, batch[i]->job, e); batch[i]->st.pos = 0; release(s, batch[i]); }
                if (ps) { job_finish(s, ps->job, e); ps->st.pos = 0; release(s, ps); }
                continue;
            }
            if (rc == -2) {     /* the decodes went through; only the prompt's request fails */
                job_finish(s, ps->job, k2c_errmsg());
                release(s, ps);
                ps = NULL;
                take = 0;
            }
            double dt = k2c_now() - t0;
            for (int i = 0; i < n; i++) batch[i]->cur = s->batch_logits + (size_t)i * V;
            if (take && take == left) ps->cur = ps->logits;
            pthread_mutex_lock(&s->mu);
            s->m_prefill_chunks += take > 0;
            s->m_decode_s += dt;
            s->m_decode_tokens += (uint64_t)n;
            s->m_steps++;
            /* exponential average of the aggregate rate, for the gauge */
            double rate = n / (dt > 1e-9 ? dt : 1e-9);
            s->m_rate = s->m_rate ? 0.9 * s->m_rate + 0.1 * rate : rate;
            pthread_mutex_unlock(&s->mu);
        }
        pthread_mutex_lock(&s->mu);
        int idle = s->stopping && s->busy == 0 && !s->queue;
        pthread_mutex_unlock(&s->mu);
        if (idle) break;
    }
done:
    free(states);
    free(ids);
    free(batch);
    return NULL;
}

/* ------------------------------------------------------------------ set-up */
int srv_enqueue(srv *s, srv_job *j) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->nqueue >= s->opts.max_queue) { pthread_mutex_unlock(&s->mu); return -1; }
    j->refs++;   /* the scheduler's reference */
    j->next = NULL;
    srv_job **tail = &s->queue;
    while (*tail) tail = &(*tail)->next;
    *tail = j;
    s->nqueue++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

srv_job *srv_job_new(void) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    return j;
}

void srv_job_release(srv_job *j) { job_unref(j); }

char *srv_error_json(const char *msg, const char *type, const char *param) {
    json_t *o = json_pack("{s:{s:o,s:s,s:o,s:n}}", "error", "message", jstr_clean(msg, strlen(msg)), "type", type,
                          "param", param ? json_string(param) : json_null(), "code");
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t ? t : strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
}

int srv_key_ok(const srv *s, const char *auth) {
    if (!s->opts.api_key) return 1;
    if (!auth || strncmp(auth, "Bearer ", 7)) return 0;
    return key_equal(auth + 7, s->opts.api_key);
}

int k2c_server_run(const k2c_server_opts *o, volatile int *stop) {
    srv *s = calloc(1, sizeof *s);
    int rc = -1, model_ok = 0, sched_ok = 0;
    if (!s) { k2c_seterr("out of memory"); return -1; }
    s->opts = *o;
    if (!s->opts.host) s->opts.host = "127.0.0.1";
    if (s->opts.port <= 0) s->opts.port = 8080;
    if (s->opts.parallel <= 0) s->opts.parallel = 4;
    if (s->opts.max_body == 0) s->opts.max_body = 1 << 20;
    if (s->opts.max_queue <= 0) s->opts.max_queue = 64;
    if (s->opts.timeout_s <= 0) s->opts.timeout_s = 300;
    if (s->opts.default_max_tokens <= 0) s->opts.default_max_tokens = 256;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    k2c_model_opts mo = {0};
    if (o->model_opts) mo = *o->model_opts;
    if (o->threads > 0) mo.threads = o->threads;
    if (k2c_model_load_opts(&s->model, o->model_dir, &mo) != 0) goto done;
    model_ok = 1;
    if (k2c_tokenizer_load(&s->tok, o->model_dir) != 0) goto done;
    if (k2c_tokenizer_vocab_size(s->tok) > s->model.cfg.vocab_size) {
        k2c_seterr("%s: the tokenizer has %d ids but the model only %d logits", o->model_dir, k2c_tokenizer_vocab_size(s->tok),
                   s->model.cfg.vocab_size);
        goto done;
    }
    if (!(s->vi = k2c_vocab_info_new(s->tok))) goto done;
    s->ctx = o->ctx > 0 ? o->ctx : s->model.cfg.max_position_embeddings < 4096 ? s->model.cfg.max_position_embeddings : 4096;
    s->nslots = s->opts.parallel;
    const char *base = strrchr(o->model_dir, '/');
    s->model_name = strdup(base && base[1] ? base + 1 : o->model_dir);
    s->slots = calloc((size_t)s->nslots, sizeof *s->slots);
    s->batch_logits = malloc((size_t)s->nslots * s->model.cfg.vocab_size * sizeof(float));
    if (!s->slots || !s->batch_logits || !s->model_name) { k2c_seterr("out of memory"); goto done; }
    for (int i = 0; i < s->nslots; i++) {
        srv_slot *sl = &s->slots[i];
        if (k2c_state_init(&sl->st, &s->model, s->ctx) != 0) goto done;
        sl->hist = calloc((size_t)s->ctx + 1, sizeof *sl->hist);
        sl->logits = malloc((size_t)s->model.cfg.vocab_size * sizeof(float));
        if (!sl->hist || !sl->logits) { k2c_seterr("out of memory"); goto done; }
    }
    s->started = k2c_now();
    if (pthread_create(&s->sched, NULL, scheduler, s) != 0) { k2c_seterr("cannot start the scheduler thread"); goto done; }
    sched_ok = 1;
    if (srv_http_start(s) != 0) goto done;
    k2c_log("k2c serve: http://%s:%d/v1 (model %s, %d slots x %d tokens)\n", s->opts.host, s->opts.port, s->model_name,
            s->nslots, s->ctx);
    while (!*stop) usleep(100 * 1000);
    k2c_log("k2c serve: stopping\n");
    rc = 0;
done:
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (sched_ok) pthread_join(s->sched, NULL);
    srv_http_stop(s);
    /* jobs never admitted (a request raced the stop) */
    while (s->queue) { srv_job *j = s->queue; s->queue = j->next; k2c_turn_stop(j->gen, "length"); job_finish(s, j, NULL); job_unref(j); }
    for (int i = 0; s->slots && i < s->nslots; i++) {
        k2c_state_free(&s->slots[i].st);
        free(s->slots[i].hist);
        free(s->slots[i].logits);
    }
    free(s->slots);
    free(s->batch_logits);
    free(s->model_name);
    k2c_vocab_info_free(s->vi);
    if (s->tok) k2c_tokenizer_free(s->tok);
    if (model_ok) k2c_model_free(&s->model);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return rc;
}
