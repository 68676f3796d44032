/* The agent loop: the model is called in-process with the same constrained generation as the server
 * (k2c_turn), tool calls are run (built-in tools or MCP servers) and their results, errors included, go
 * back as tool messages, turn after turn, until the model answers without calling a tool or the turn
 * limit is reached. Each turn re-renders the chat; the latent cache rows of the longest common prefix
 * with the previous turn's tokens are kept, so only the new messages are prefilled. */
#include "serve/serve.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESULT_MAX 8192         /* tool results are cut to keep the context bounded */

typedef struct { char *name; int mcp; } tool_ref;   /* mcp: index + 1, 0 for built-in */

static int lcp(const int *a, int na, const int *b, int nb) {
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Adds the tools of one source to the declared list, skipping names already taken. */
static int add_tools(json_t *decl, tool_ref **refs, int *nrefs, const char *tools_json, int mcp, FILE *log) {
    json_t *arr = json_loads(tools_json, 0, NULL);
    if (!json_is_array(arr)) { json_decref(arr); k2c_seterr("agent: bad tool list"); return -1; }
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t) {
        const char *name = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (!name) continue;
        int dup = 0;
        for (int k = 0; k < *nrefs; k++) if (!strcmp((*refs)[k].name, name)) dup = 1;
        if (dup) { if (log) fprintf(log, "agent: tool '%s' declared twice; the first one is kept\n", name); continue; }
        tool_ref *nr = realloc(*refs, (size_t)(*nrefs + 1) * sizeof *nr);
        if (!nr) { json_decref(arr); k2c_seterr("out of memory"); return -1; }
        *refs = nr;
        (*refs)[*nrefs].name = strdup(name);
        (*refs)[*nrefs].mcp = mcp;
        (*nrefs)++;
        json_array_append(decl, t);
    }
    json_decref(arr);
    return 0;
}

int k2c_agent_run(const k2c_agent_opts *o, const char *task, char **answer) {
    k2c_model m;
    k2c_tokenizer *tok = NULL;
    k2c_vocab_info *vi = NULL;
    k2c_state st = {0};
    k2c_mcp *mcp[16] = {0};
    int nmcp = 0, rc = -1, model_ok = 0, *hist = NULL, *ids = NULL, nids = 0;
    float *logits = NULL;
    tool_ref *refs = NULL;
    int nrefs = 0;
    json_t *decl = json_array(), *msgs = json_array();
    char *tools_txt = NULL, *msgs_txt = NULL;
    FILE *log = (FILE *)o->log;
    *answer = NULL;
    k2c_model_opts mo = {0};
    if (o->model_opts) mo = *o->model_opts;
    if (o->threads > 0) mo.threads = o->threads;
    if (k2c_model_load_opts(&m, o->model_dir, &mo) != 0) goto done;
    model_ok = 1;
    if (k2c_tokenizer_load(&tok, o->model_dir) != 0) goto done;
    if (!(vi = k2c_vocab_info_new(tok))) goto done;
    int ctx = o->ctx > 0 ? o->ctx : 8192, V = m.cfg.vocab_size;
    if (k2c_state_init(&st, &m, ctx) != 0) goto done;
    if (!(hist = calloc((size_t)ctx + 1, sizeof *hist)) || !(logits = malloc((size_t)V * sizeof *logits))) { k2c_seterr("out of memory"); goto done; }
    if (o->builtin && add_tools(decl, &refs, &nrefs, k2c_builtin_tools_json(), 0, log) != 0) goto done;
    for (int i = 0; i < o->nmcp && nmcp < 16; i++) {
        if (!(mcp[nmcp] = k2c_mcp_start(o->mcp[i], 30))) goto done;
        char *list = k2c_mcp_list_tools(mcp[nmcp]);
        nmcp++;
        if (!list) goto done;
        int r = add_tools(decl, &refs, &nrefs, list, nmcp, log);
        free(list);
        if (r) goto done;
    }
    if (log) fprintf(log, "agent: %d tools declared\n", nrefs);
    if (nrefs && !(tools_txt = json_dumps(decl, JSON_COMPACT))) { k2c_seterr("out of memory"); goto done; }
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", task));
    const char *workdir = o->workdir ? o->workdir : ".";
    int turn = 0;
    for (; turn < o->max_turns; turn++) {
        free(msgs_txt); free(ids);
        ids = NULL;
        msgs_txt = json_dumps(msgs, JSON_COMPACT);
        /* tool results and MCP tool descriptions are outside text: specials only where the template puts them */
        if (!msgs_txt) { k2c_seterr("out of memory"); goto done; }
        if (k2c_chat_render_ids(tok, msgs_txt, tools_txt, 1, "agent messages", "agent tools", &ids, &nids) != 0) goto done;
        if (nids + 16 > ctx) { k2c_seterr("agent: the conversation (%d tokens) no longer fits the context (%d)", nids, ctx); goto done; }
        int keep = lcp(hist, st.pos, ids, nids);
        if (keep >= nids) keep = nids - 1;
        st.pos = keep;
        memcpy(hist + keep, ids + keep, (size_t)(nids - keep) * sizeof *ids);
        double t0 = k2c_now();
        if (k2c_prefill(&st, ids + keep, nids - keep, NULL, logits, NULL) != 0) goto done;
        if (log) fprintf(log, "agent: turn %d: prompt %d tokens (%d reused), prefill %.2f s\n", turn + 1, nids, keep, k2c_now() - t0);
        int room = ctx - nids;
        k2c_turn_opts go = {.tools_json = tools_txt, .tool_choice = nrefs ? o->tool_choice : K2C_TOOLS_NONE,
                           .parallel_tool_calls = 1, .temperature = o->temperature, .top_p = 1.0f,
                           .seed = o->seed + (uint64_t)turn, .max_tokens = o->max_tokens < room ? o->max_tokens : room, .vocab_info = vi};
        k2c_turn *g = k2c_turn_new(tok, V, &go);
        if (!g) goto done;
        int id, r;
        while ((r = k2c_turn_step(g, logits, &id)) == 1) {
            hist[st.pos] = id;
            if (k2c_decode(&st, id, logits, NULL) != 0) { r = -1; break; }
        }
        if (r < 0) { k2c_turn_free(g); goto done; }
        k2c_toolparse *p = k2c_turn_parser(g);
        size_t clen;
        const char *content = k2c_toolparse_content(p, &clen);
        char *clean = k2c_utf8_clean(content, clen);
        int ncalls = k2c_toolparse_ncalls(p);
        if (log) fprintf(log, "agent: turn %d: %d tokens, %d tool call(s), finish %s\n", turn + 1, k2c_turn_ntokens(g), ncalls,
                         k2c_turn_finish_reason(g) ? k2c_turn_finish_reason(g) : "?");
        json_t *am = json_pack("{s:s,s:s}", "role", "assistant", "content", clean ? clean : "");
        if (ncalls == 0) {
            json_array_append_new(msgs, am);
            *answer = clean;
            k2c_turn_free(g);
            turn++;
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
            int is_error = 1, which = -1;
            char *res = NULL;
            for (int k = 0; k < nrefs; k++) if (!strcmp(refs[k].name, c->name)) which = k;
            k2c_seterr("%s", "");
            if (which < 0) k2c_seterr("unknown tool '%s'", c->name);
            else if (refs[which].mcp) res = k2c_mcp_call_tool(mcp[refs[which].mcp - 1], c->name, c->arguments, &is_error);
            else res = k2c_builtin_tool(workdir, c->name, c->arguments, &is_error);
            if (!res) { is_error = 1; res = strdup(k2c_errmsg()); }
            if (res && strlen(res) > RESULT_MAX) strcpy(res + RESULT_MAX - 16, "\n[truncated]");
            char *rclean = k2c_utf8_clean(res ? res : "", res ? strlen(res) : 0);
            if (log) fprintf(log, "agent:   %s %s -> %s%.200s\n", c->name, c->arguments, is_error ? "ERROR " : "", rclean ? rclean : "");
            /* an error is still a result: the model sees it and may try something else */
            char *text = NULL;
            if (rclean && is_error && asprintf(&text, "Error: %s", rclean) < 0) text = NULL;
            json_array_append_new(msgs, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", c->id, "content",
                                                  text ? text : rclean ? rclean : ""));
            free(text);
            free(rclean);
            free(res);
        }
        k2c_turn_free(g);
    }
    if (o->transcript) {
        json_t *tr = json_pack("{s:O,s:O,s:i}", "tools", decl, "messages", msgs, "turns", turn);
        char *t = tr ? json_dumps(tr, JSON_INDENT(1)) : NULL;
        json_decref(tr);
        int w = t ? k2c_write_file_atomic(o->transcript, t, strlen(t)) : -1;
        free(t);
        if (w) goto done;
    }
    rc = 0;
done:
    for (int i = 0; i < nmcp; i++) k2c_mcp_close(mcp[i]);
    for (int i = 0; i < nrefs; i++) free(refs[i].name);
    free(refs);
    json_decref(decl);
    json_decref(msgs);
    free(tools_txt); free(msgs_txt); free(ids); free(hist); free(logits);
    k2c_state_free(&st);
    k2c_vocab_info_free(vi);
    if (tok) k2c_tokenizer_free(tok);
    if (model_ok) k2c_model_free(&m);
    if (rc && *answer) { free(*answer); *answer = NULL; }
    return rc;
}
