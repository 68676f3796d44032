/* The agent loop: the model is called in-process with the same constrained generation as the server
 * (k2c_turn), tool calls are run (built-in tools and environments, or MCP servers) and their results,
 * errors included, go back as tool messages, turn after turn, until the model answers without calling a
 * tool, the turn limit is reached or the conversation outgrows the context. Each turn re-renders the chat;
 * the latent cache rows of the longest common prefix with the previous turn's tokens are kept, so only the
 * new messages are prefilled.
 *
 * A session (k2c_agent) loads the model, tokenizer, MCP servers and toolbox once and runs any number of
 * tasks (evaluation, RL rollouts); each task starts from a fresh environment. What a task did comes back
 * as a k2c_agent_result: the answer, the transcript, and per turn the prompt ids and the sampled ids, which
 * is what the RL trainer needs to score log pi(y | x) of exactly the tokens that were sampled. */
#include "serve/serve.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESULT_MAX 8192         /* tool results are cut to keep the context bounded */

typedef struct { char *name; int mcp; } tool_ref;   /* mcp: index + 1, 0 for built-in */

struct k2c_agent {
    k2c_agent_opts o;
    k2c_model m;
    int model_ok;
    k2c_tokenizer *tok;
    k2c_vocab_info *vi;
    k2c_state st;
    int ctx, V, *hist;
    float *logits;
    k2c_mcp *mcp[16];
    int nmcp;
    k2c_toolbox *box;
    tool_ref *refs;
    int nrefs;
    json_t *decl;
    char *tools_txt;
    char *mcp_lists[16];        /* each MCP server's tool list, kept to rebuild the declarations */
    unsigned cur_groups;        /* the built-in groups declared now */
    char *cur_workdir;
};

static int lcp(const int *a, int na, const int *b, int nb) {
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Adds the tools of one source to the declared list, skipping names already taken. */
static int add_tools(k2c_agent *ag, const char *tools_json, int mcp, FILE *log) {
    json_t *arr = json_loads(tools_json, 0, NULL);
    if (!json_is_array(arr)) { json_decref(arr); k2c_seterr("agent: bad tool list"); return -1; }
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t) {
        const char *name = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (!name) continue;
        int dup = 0;
        for (int k = 0; k < ag->nrefs; k++) if (!strcmp(ag->refs[k].name, name)) dup = 1;
        if (dup) { if (log) fprintf(log, "agent: tool '%s' declared twice; the first one is kept\n", name); continue; }
        tool_ref *nr = realloc(ag->refs, (size_t)(ag->nrefs + 1) * sizeof *nr);
        if (!nr) { json_decref(arr); k2c_seterr("out of memory"); return -1; }
        ag->refs = nr;
        ag->refs[ag->nrefs].name = strdup(name);
        ag->refs[ag->nrefs].mcp = mcp;
        ag->nrefs++;
        json_array_append(ag->decl, t);
    }
    json_decref(arr);
    return 0;
}

void k2c_agent_free(k2c_agent *ag) {
    if (!ag) return;
    for (int i = 0; i < ag->nmcp; i++) { k2c_mcp_close(ag->mcp[i]); free(ag->mcp_lists[i]); }
    free(ag->cur_workdir);
    for (int i = 0; i < ag->nrefs; i++) free(ag->refs[i].name);
    free(ag->refs);
    json_decref(ag->decl);
    free(ag->tools_txt); free(ag->hist); free(ag->logits);
    k2c_state_free(&ag->st);
    k2c_vocab_info_free(ag->vi);
    if (ag->tok) k2c_tokenizer_free(ag->tok);
    if (ag->model_ok) k2c_model_free(&ag->m);
    k2c_toolbox_free(ag->box);
    free(ag);
}

/* (Re)builds the toolbox for the current groups and working directory, then the declarations: built-in
 * tools first, then every MCP server's. */
static int declare(k2c_agent *ag) {
    FILE *log = (FILE *)ag->o.log;
    k2c_toolbox_free(ag->box);
    ag->box = NULL;
    for (int i = 0; i < ag->nrefs; i++) free(ag->refs[i].name);
    ag->nrefs = 0;
    json_array_clear(ag->decl);
    free(ag->tools_txt);
    ag->tools_txt = NULL;
    if (ag->cur_groups || ag->o.allow_write) {
        k2c_toolbox_opts to = {.groups = ag->cur_groups, .workdir = ag->cur_workdir, .allow_write = ag->o.allow_write,
                               .seed = ag->o.env_seed ? ag->o.env_seed : 2026};
        if (!(ag->box = k2c_toolbox_new(&to))) return -1;
        if (add_tools(ag, k2c_toolbox_json(ag->box), 0, log) != 0) return -1;
    }
    for (int i = 0; i < ag->nmcp; i++)
        if (add_tools(ag, ag->mcp_lists[i], i + 1, log) != 0) return -1;
    if (ag->nrefs && !(ag->tools_txt = json_dumps(ag->decl, JSON_COMPACT))) { k2c_seterr("out of memory"); return -1; }
    return 0;
}

/* Declares other built-in groups (and another working directory) for the tasks that follow. */
int k2c_agent_set_tools(k2c_agent *ag, unsigned groups, const char *workdir) {
    char *wd = workdir ? strdup(workdir) : NULL;
    if (workdir && !wd) { k2c_seterr("out of memory"); return -1; }
    free(ag->cur_workdir);
    ag->cur_workdir = wd;
    ag->cur_groups = groups;
    return declare(ag);
}

k2c_agent *k2c_agent_new(const k2c_agent_opts *o) {
    k2c_agent *ag = calloc(1, sizeof *ag);
    if (!ag) { k2c_seterr("out of memory"); return NULL; }
    ag->o = *o;
    ag->decl = json_array();
    FILE *log = (FILE *)o->log;
    unsigned groups = o->tools | (o->builtin ? (unsigned)K2C_TOOLS_BUILTIN : 0u);
    k2c_model_opts mo = {0};
    if (o->model_opts) mo = *o->model_opts;
    if (o->threads > 0) mo.threads = o->threads;
    if (k2c_model_load_opts(&ag->m, o->model_dir, &mo) != 0) goto fail;
    ag->model_ok = 1;
    if (k2c_tokenizer_load(&ag->tok, o->model_dir) != 0) goto fail;
    if (!(ag->vi = k2c_vocab_info_new(ag->tok))) goto fail;
    ag->ctx = o->ctx > 0 ? o->ctx : 8192;
    ag->V = ag->m.cfg.vocab_size;
    if (k2c_state_init(&ag->st, &ag->m, ag->ctx) != 0) goto fail;
    if (!(ag->hist = calloc((size_t)ag->ctx + 1, sizeof *ag->hist)) || !(ag->logits = malloc((size_t)ag->V * sizeof(float)))) {
        k2c_seterr("out of memory");
        goto fail;
    }
    for (int i = 0; i < o->nmcp && ag->nmcp < 16; i++) {
        if (!(ag->mcp[ag->nmcp] = k2c_mcp_start(o->mcp[i], 30))) goto fail;
        ag->mcp_lists[ag->nmcp] = k2c_mcp_list_tools(ag->mcp[ag->nmcp]);
        ag->nmcp++;
        if (!ag->mcp_lists[ag->nmcp - 1]) goto fail;
    }
    ag->cur_groups = groups;
    if (o->workdir && !(ag->cur_workdir = strdup(o->workdir))) { k2c_seterr("out of memory"); goto fail; }
    if (declare(ag)) goto fail;
    if (log) fprintf(log, "agent: %d tools declared\n", ag->nrefs);
    return ag;
fail:
    k2c_agent_free(ag);
    return NULL;
}

k2c_toolbox *k2c_agent_toolbox(k2c_agent *ag) { return ag->box; }
const char *k2c_agent_tools_json(const k2c_agent *ag) { return ag->tools_txt; }
const k2c_tokenizer *k2c_agent_tokenizer(const k2c_agent *ag) { return ag->tok; }

void k2c_agent_result_free(k2c_agent_result *r) {
    free(r->answer);
    free(r->transcript);
    for (int i = 0; i < r->nrec; i++) { free(r->prompt[i]); free(r->gen[i]); }
    free(r->prompt); free(r->nprompt); free(r->gen); free(r->ngen);
    memset(r, 0, sizeof *r);
}

static int record_turn(k2c_agent_result *r, const int *ids, int nids, const int *gen, int ngen) {
    int n = r->nrec + 1;
    int **p = realloc(r->prompt, (size_t)n * sizeof *p);
    if (p) r->prompt = p;
    int **g = realloc(r->gen, (size_t)n * sizeof *g);
    if (g) r->gen = g;
    int *np = realloc(r->nprompt, (size_t)n * sizeof *np);
    if (np) r->nprompt = np;
    int *ng = realloc(r->ngen, (size_t)n * sizeof *ng);
    if (ng) r->ngen = ng;
    if (!p || !g || !np || !ng) { k2c_seterr("out of memory"); return -1; }
    r->prompt[r->nrec] = malloc((size_t)(nids ? nids : 1) * sizeof(int));
    r->gen[r->nrec] = malloc((size_t)(ngen ? ngen : 1) * sizeof(int));
    if (!r->prompt[r->nrec] || !r->gen[r->nrec]) { free(r->prompt[r->nrec]); free(r->gen[r->nrec]); k2c_seterr("out of memory"); return -1; }
    memcpy(r->prompt[r->nrec], ids, (size_t)nids * sizeof(int));
    memcpy(r->gen[r->nrec], gen, (size_t)ngen * sizeof(int));
    r->nprompt[r->nrec] = nids;
    r->ngen[r->nrec] = ngen;
    r->nrec = n;
    return 0;
}

/* The transcript as it stands: written after every message, so a killed run leaves everything said so
 * far (each write is a whole file, temp + rename: a reader never sees half of one). */
static char *transcript_json(const k2c_agent *ag, json_t *msgs, int turns, const char *finish) {
    char *state = ag->box ? k2c_toolbox_state_json(ag->box) : NULL;
    json_t *st = state ? json_loads(state, 0, NULL) : NULL;
    free(state);
    json_t *tr = json_pack("{s:O,s:O,s:i,s:s}", "tools", ag->decl, "messages", msgs, "turns", turns, "finish", finish);
    if (tr && st) json_object_set_new(tr, "state", st);
    else json_decref(st);
    char *t = tr ? json_dumps(tr, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(tr);
    if (!t) k2c_seterr("out of memory");
    return t;
}

static int save_transcript(const k2c_agent *ag, json_t *msgs, int turns, const char *finish) {
    if (!ag->o.transcript) return 0;
    char *t = transcript_json(ag, msgs, turns, finish);
    int w = t ? k2c_write_file_atomic(ag->o.transcript, t, strlen(t)) : -1;
    free(t);
    return w;
}

/* One tool call, run: the result text for the model ("Error: ..." for a failure, which is still a result). */
static char *run_call(k2c_agent *ag, const k2c_tool_call *c, int *is_error) {
    int which = -1;
    char *res = NULL;
    *is_error = 1;
    for (int k = 0; k < ag->nrefs; k++) if (!strcmp(ag->refs[k].name, c->name)) which = k;
    k2c_seterr("%s", "");
    if (which < 0) k2c_seterr("unknown tool '%s'", c->name);
    else if (ag->refs[which].mcp) res = k2c_mcp_call_tool(ag->mcp[ag->refs[which].mcp - 1], c->name, c->arguments, is_error);
    else res = k2c_toolbox_call(ag->box, c->name, c->arguments, is_error);
    if (!res) { *is_error = 1; res = strdup(*k2c_errmsg() ? k2c_errmsg() : "the tool failed"); }
    if (res && strlen(res) > RESULT_MAX) strcpy(res + RESULT_MAX - 16, "\n[truncated]");
    char *rclean = k2c_utf8_clean(res ? res : "", res ? strlen(res) : 0), *text = NULL;
    free(res);
    if (rclean && *is_error && asprintf(&text, "Error: %s", rclean) < 0) text = NULL;
    if (text) { free(rclean); return text; }
    return rclean;
}

int k2c_agent_task(k2c_agent *ag, const k2c_agent_task_opts *to, k2c_agent_result *r) {
    memset(r, 0, sizeof *r);
    const k2c_agent_opts *o = &ag->o;
    FILE *log = (FILE *)o->log;
    json_t *msgs = json_array();
    char *msgs_txt = NULL;
    int *ids = NULL, nids = 0, rc = -1, turn = 0;
    const char *finish = "max_turns";
    int max_turns = to->max_turns > 0 ? to->max_turns : o->max_turns > 0 ? o->max_turns : 8;
    int max_tokens = to->max_tokens > 0 ? to->max_tokens : o->max_tokens > 0 ? o->max_tokens : 512;
    if (ag->box && k2c_toolbox_reset(ag->box)) goto done;
    if (to->system) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", to->system));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", to->task));
    if (save_transcript(ag, msgs, 0, "running")) goto done;
    for (; turn < max_turns; turn++) {
        free(msgs_txt); free(ids);
        ids = NULL;
        msgs_txt = json_dumps(msgs, JSON_COMPACT);
        /* tool results and MCP tool descriptions are outside text: specials only where the template puts them */
        if (!msgs_txt) { k2c_seterr("out of memory"); goto done; }
        if (k2c_chat_render_ids(ag->tok, msgs_txt, ag->tools_txt, 1, "agent messages", "agent tools", &ids, &nids) != 0) goto done;
        if (nids + 16 > ag->ctx) {
            /* a scored failure, not an error: the rollout ran past the context */
            if (log) fprintf(log, "agent: the conversation (%d tokens) no longer fits the context (%d)\n", nids, ag->ctx);
            finish = "context";
            break;
        }
        int keep = lcp(ag->hist, ag->st.pos, ids, nids);
        if (keep >= nids) keep = nids - 1;
        ag->st.pos = keep;
        memcpy(ag->hist + keep, ids + keep, (size_t)(nids - keep) * sizeof *ids);
        double t0 = k2c_now();
        if (k2c_prefill(&ag->st, ids + keep, nids - keep, NULL, ag->logits, NULL) != 0) goto done;
        if (log) fprintf(log, "agent: turn %d: prompt %d tokens (%d reused), prefill %.2f s\n", turn + 1, nids, keep, k2c_now() - t0);
        int room = ag->ctx - nids;
        k2c_turn_opts go = {.tools_json = ag->tools_txt, .tool_choice = ag->nrefs ? o->tool_choice : K2C_TOOLS_NONE,
                            .parallel_tool_calls = 1, .temperature = to->temperature, .top_p = 1.0f,
                            .seed = to->seed + (uint64_t)turn, .max_tokens = max_tokens < room ? max_tokens : room,
                            .vocab_info = ag->vi};
        k2c_turn *g = k2c_turn_new(ag->tok, ag->V, &go);
        if (!g) goto done;
        int id, st, start = ag->st.pos;
        while ((st = k2c_turn_step(g, ag->logits, &id)) == 1) {
            ag->hist[ag->st.pos] = id;
            if (k2c_decode(&ag->st, id, ag->logits, NULL) != 0) { st = -1; break; }
        }
        if (st < 0 || record_turn(r, ids, nids, ag->hist + start, ag->st.pos - start)) { k2c_turn_free(g); goto done; }
        r->gen_tokens += ag->st.pos - start;
        k2c_toolparse *p = k2c_turn_parser(g);
        size_t clen;
        const char *content = k2c_toolparse_content(p, &clen);
        char *clean = k2c_utf8_clean(content, clen);
        int ncalls = k2c_toolparse_ncalls(p);
        const char *fr = k2c_turn_finish_reason(g);
        if (fr && !strcmp(fr, "length")) r->truncated++;
        if (log) fprintf(log, "agent: turn %d: %d tokens, %d tool call(s), finish %s\n", turn + 1, k2c_turn_ntokens(g), ncalls, fr ? fr : "?");
        json_t *am = json_pack("{s:s,s:s}", "role", "assistant", "content", clean ? clean : "");
        if (ncalls == 0) {
            json_array_append_new(msgs, am);
            r->answer = clean;
            k2c_turn_free(g);
            turn++;
            finish = "answer";
            break;
        }
        free(clean);
        char *tcj = k2c_toolparse_json(p);
        json_t *tcs = tcj ? json_loads(tcj, 0, NULL) : NULL;
        free(tcj);
        if (!tcs) { json_decref(am); k2c_turn_free(g); k2c_seterr("agent: tool calls not representable"); goto done; }
        json_object_set_new(am, "tool_calls", tcs);
        json_array_append_new(msgs, am);
        for (int i = 0; i < ncalls; i++) {
            const k2c_tool_call *c = k2c_toolparse_call(p, i);
            int is_error;
            char *text = run_call(ag, c, &is_error);
            r->ncalls++;
            r->nerrors += is_error;
            if (log) fprintf(log, "agent:   %s %s -> %.200s\n", c->name, c->arguments, text ? text : "");
            json_array_append_new(msgs, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", c->id, "content", text ? text : ""));
            free(text);
        }
        k2c_turn_free(g);
        if (save_transcript(ag, msgs, turn + 1, "running")) goto done;
    }
    r->turns = turn;
    r->finish = finish;
    if (save_transcript(ag, msgs, turn, finish)) goto done;
    if (!(r->transcript = transcript_json(ag, msgs, turn, finish))) goto done;
    rc = 0;
done:
    json_decref(msgs);
    free(msgs_txt); free(ids);
    if (rc) k2c_agent_result_free(r);
    return rc;
}

int k2c_agent_run(const k2c_agent_opts *o, const char *task, char **answer) {
    *answer = NULL;
    k2c_agent *ag = k2c_agent_new(o);
    if (!ag) return -1;
    k2c_agent_task_opts to = {.task = task, .temperature = o->temperature, .seed = o->seed};
    k2c_agent_result r;
    int rc = k2c_agent_task(ag, &to, &r);
    if (rc == 0) {
        *answer = r.answer;
        r.answer = NULL;
        if (!strcmp(r.finish, "context") && o->log)
            fprintf((FILE *)o->log, "agent: stopped: the conversation no longer fits the context (--ctx)\n");
        k2c_agent_result_free(&r);
    }
    k2c_agent_free(ag);
    return rc;
}
