/* Chat template rendering and the tool-call parser (whole, streamed in every chunking, malformed). */
#include "text/text.h"
#include "check.h"

#include <string.h>

#define SYS_DEFAULT "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>"

static void render_multi_turn_with_tools(void) {
    const char *tools =
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Météo\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]";
    const char *msgs =
        "[{\"role\":\"user\",\"content\":\"Weather in Paris and Rome?\"},"
        " {\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
        "   {\"id\":\"functions.get_weather:0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
        "   {\"id\":\"functions.get_weather:1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Rome\",\"days\":1.0,\"x\":[1,2e-5]}}}]},"
        " {\"role\":\"tool\",\"tool_call_id\":\"functions.get_weather:0\",\"content\":\"18C\"},"
        " {\"role\":\"tool\",\"tool_call_id\":\"functions.get_weather:1\",\"content\":[{\"type\":\"text\",\"text\":\"21\"},{\"type\":\"text\",\"text\":\"C\"}]},"
        " {\"role\":\"assistant\",\"content\":\"Paris 18C, Rome 21C.\"},"
        " {\"role\":\"user\",\"name\":\"bob\",\"content\":\"Thanks\\n\"}]";
    char *out = k2c_chat_render(msgs, tools, 1, "msgs", "tools");
    const char *want =
        "<|im_system|>tool_declare<|im_middle|>"
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Météo\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]<|im_end|>"
        SYS_DEFAULT
        "<|im_user|>user<|im_middle|>Weather in Paris and Rome?<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|>Checking.<|tool_calls_section_begin|>"
        "<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"city\": \"Paris\"}<|tool_call_end|>"
        "<|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>{\"city\": \"Rome\", \"days\": 1.0, \"x\": [1, 2e-05]}<|tool_call_end|>"
        "<|tool_calls_section_end|><|im_end|>"
        "<|im_system|>tool<|im_middle|>## Return of functions.get_weather:0\n18C<|im_end|>"
        "<|im_system|>tool<|im_middle|>## Return of functions.get_weather:1\n21C<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|>Paris 18C, Rome 21C.<|im_end|>"
        "<|im_user|>bob<|im_middle|>Thanks\n<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|>";
    EXPECT(out && !strcmp(out, want), "rendered:\n%s\nwant:\n%s", out ? out : k2c_errmsg(), want);
    free(out);
}

static void render_system_first_and_no_tools(void) {
    char *out = k2c_chat_render("[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":null}]",
                                "[]", 0, NULL, NULL);
    const char *want = "<|im_system|>system<|im_middle|>Be brief.<|im_end|><|im_user|>user<|im_middle|><|im_end|>";
    EXPECT(out && !strcmp(out, want), "got %s", out ? out : k2c_errmsg());
    free(out);
    /* assistant tool call without id: the model's own form functions.NAME:IDX */
    out = k2c_chat_render("[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{}}},"
                          "{\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"a\\\":\\\"\\\\u0001\\\"}\"}}]}]", NULL, 0, NULL, NULL);
    want = SYS_DEFAULT "<|im_assistant|>assistant<|im_middle|><|tool_calls_section_begin|>"
           "<|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{}<|tool_call_end|>"
           "<|tool_call_begin|>functions.g:1<|tool_call_argument_begin|>{\"a\":\"\\u0001\"}<|tool_call_end|>"
           "<|tool_calls_section_end|><|im_end|>";
    EXPECT(out && !strcmp(out, want), "got %s", out ? out : k2c_errmsg());
    free(out);
    /* tool_declare JSON is Python's compact json.dumps: control characters escaped lowercase, unicode kept */
    out = k2c_chat_render("[]", "[{\"n\":\"a\\u001fb\\t\\u00e9\",\"v\":[1e20,-0.5,3]}]", 1, NULL, NULL);
    want = "<|im_system|>tool_declare<|im_middle|>[{\"n\":\"a\\u001fb\\t\xc3\xa9\",\"v\":[1e+20,-0.5,3]}]<|im_end|>"
           "<|im_assistant|>assistant<|im_middle|>";
    EXPECT(out && !strcmp(out, want), "got %s", out ? out : k2c_errmsg());
    free(out);
}

static void expect_render_error(const char *msgs, const char *tools, const char *needle) {
    char *out = k2c_chat_render(msgs, tools, 1, "m.json", "t.json");
    EXPECT(out == NULL, "rendered '%s' for bad input %s", out ? out : "", msgs);
    EXPECT(out || strstr(k2c_errmsg(), needle), "error '%s' lacks '%s'", k2c_errmsg(), needle);
    free(out);
}

static void render_bad_input(void) {
    expect_render_error("{\"role\":\"user\"}", NULL, "m.json: messages: expected a JSON array");
    expect_render_error("[{\"role\":\"user\",", NULL, "m.json:1: bad JSON");
    expect_render_error("[3]", NULL, "m.json: [0]: expected a message object");
    expect_render_error("[{\"content\":\"x\"}]", NULL, "m.json: [0].role");
    expect_render_error("[{\"role\":7}]", NULL, "m.json: [0].role");
    expect_render_error("[{\"role\":\"user\",\"content\":5}]", NULL, "m.json: [0].content");
    expect_render_error("[{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]}]", NULL, "m.json: [0].content[0]");
    expect_render_error("[{\"role\":\"tool\",\"content\":\"x\"}]", NULL, "m.json: [0].tool_call_id");
    expect_render_error("[{\"role\":\"user\",\"name\":[1]}]", NULL, "m.json: [0].name");
    expect_render_error("[{\"role\":\"assistant\",\"tool_calls\":{}}]", NULL, "m.json: [0].tool_calls");
    expect_render_error("[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{}}]}]", NULL, "m.json: [0].tool_calls[0]");
    expect_render_error("[]", "{\"a\":1}", "t.json: tools: expected a JSON array");
    expect_render_error("[]", "[", "t.json:1: bad JSON");
}

/* ------------------------------------------------------------------ tool-call parser */
#define SECTION(x) "<|tool_calls_section_begin|>" x "<|tool_calls_section_end|>"
#define CALL(id, args) "<|tool_call_begin|>" id "<|tool_call_argument_begin|>" args "<|tool_call_end|>"

static const char *two_calls =
    "Let me check both. " SECTION(CALL("functions.get_weather:0", "{\"city\": \"Paris\"}")
                                  "\n" CALL(" functions.search.web:1 ", "{\"q\": \"<|im_end|> \\u00e9 \xe4\xb8\xad\"}"));

typedef struct {
    char content[4096];
    char args[4][1024];
    char id[4][128], name[4][128];
    int ndelta_first[4];
} collected;

static void collect(collected *c, const k2c_tool_events *ev) {
    strncat(c->content, ev->content, ev->content_len);
    for (int i = 0; i < ev->ndeltas; i++) {
        const k2c_tool_delta *d = &ev->deltas[i];
        if (d->index < 0 || d->index >= 4) continue;
        if (d->id) { snprintf(c->id[d->index], 128, "%s", d->id); snprintf(c->name[d->index], 128, "%s", d->name); c->ndelta_first[d->index]++; }
        strncat(c->args[d->index], d->args, d->args_len);
    }
}

/* Feeds text in chunks of `step` bytes (0: whole), returns the parser after finish. */
static k2c_toolparse *parse_steps(const char *text, size_t step, collected *c) {
    k2c_toolparse *p = k2c_toolparse_new();
    k2c_tool_events ev;
    size_t n = strlen(text);
    memset(c, 0, sizeof *c);
    if (!step) step = n ? n : 1;
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        if (k2c_toolparse_feed(p, text + i, k, &ev) != 0) { EXPECT(0, "feed: %s", k2c_errmsg()); break; }
        collect(c, &ev);
    }
    EXPECT(k2c_toolparse_finish(p, &ev) == 0, "finish: %s", k2c_errmsg());
    collect(c, &ev);
    return p;
}

static void toolcall_whole_and_streamed(void) {
    for (size_t step = 0; step <= 40; step++) {
        collected c;
        k2c_toolparse *p = parse_steps(two_calls, step, &c);
        EXPECT(!strcmp(c.content, "Let me check both. "), "step %zu content '%s'", step, c.content);
        EXPECT(k2c_toolparse_ncalls(p) == 2, "step %zu ncalls %d", step, k2c_toolparse_ncalls(p));
        EXPECT(k2c_toolparse_flags(p) == 0, "step %zu flags %d", step, k2c_toolparse_flags(p));
        if (k2c_toolparse_ncalls(p) == 2) {
            const k2c_tool_call *a = k2c_toolparse_call(p, 0), *b = k2c_toolparse_call(p, 1);
            EXPECT(!strcmp(a->id, "functions.get_weather:0") && !strcmp(a->name, "get_weather") && a->flags == 0, "call 0 %s %s %d", a->id, a->name, a->flags);
            EXPECT(!strcmp(a->arguments, "{\"city\": \"Paris\"}"), "args0 %s", a->arguments);
            EXPECT(!strcmp(b->id, "functions.search.web:1") && !strcmp(b->name, "search.web") && b->flags == 0, "call 1 %s %s %d", b->id, b->name, b->flags);
            EXPECT(!strcmp(b->arguments, "{\"q\": \"<|im_end|> \\u00e9 \xe4\xb8\xad\"}"), "args1 %s", b->arguments);
            /* the deltas add up to the same thing, each call announced exactly once */
            EXPECT(!strcmp(c.id[0], a->id) && !strcmp(c.name[1], "search.web") && c.ndelta_first[0] == 1 && c.ndelta_first[1] == 1,
                   "step %zu delta ids '%s' '%s' %d %d", step, c.id[0], c.name[1], c.ndelta_first[0], c.ndelta_first[1]);
            EXPECT(!strcmp(c.args[0], a->arguments) && !strcmp(c.args[1], b->arguments), "step %zu delta args '%s' '%s'", step, c.args[0], c.args[1]);
        }
        if (step == 0) {
            char *js = k2c_toolparse_json(p);
            const char *want = "[{\"id\":\"functions.get_weather:0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                               "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},{\"id\":\"functions.search.web:1\",\"type\":\"function\","
                               "\"function\":{\"name\":\"search.web\",\"arguments\":\"{\\\"q\\\": \\\"<|im_end|> \\\\u00e9 \xe4\xb8\xad\\\"}\"}}]";
            EXPECT(js && !strcmp(js, want), "json %s", js ? js : k2c_errmsg());
            free(js);
        }
        k2c_toolparse_free(p);
    }
}

static void toolcall_no_calls_and_lookalikes(void) {
    /* '<' and marker prefixes that never complete stay content, in any chunking */
    const char *text = "a < b, <|tool_call <| <|im_end| x<|tool_calls_section_en <|tool_call_end|> end <";
    for (size_t step = 0; step <= 7; step++) {
        collected c;
        k2c_toolparse *p = parse_steps(text, step, &c);
        EXPECT(k2c_toolparse_ncalls(p) == 0, "calls %d", k2c_toolparse_ncalls(p));
        EXPECT(!strcmp(c.content, text), "step %zu content '%s'", step, c.content);
        k2c_toolparse_free(p);
    }
}

static void toolcall_malformed(void) {
    collected c;
    k2c_toolparse *p;
    /* singular section token, missing section end */
    p = parse_steps("hi<|tool_call_section_begin|>" CALL("functions.f:0", "{}"), 1, &c);
    EXPECT(k2c_toolparse_ncalls(p) == 1 && k2c_toolparse_call(p, 0)->flags == 0, "singular: n %d", k2c_toolparse_ncalls(p));
    EXPECT(k2c_toolparse_flags(p) == (K2C_TP_SINGULAR_SECTION | K2C_TP_NO_SECTION_END), "flags %d", k2c_toolparse_flags(p));
    EXPECT(!strcmp(c.content, "hi"), "content %s", c.content);
    k2c_toolparse_free(p);
    /* missing <|tool_call_end|> before the next call and before the section end */
    p = parse_steps(SECTION("<|tool_call_begin|>functions.a:0<|tool_call_argument_begin|>{\"x\":1}"
                            "<|tool_call_begin|>functions.b:1<|tool_call_argument_begin|>{\"y\":2}"), 3, &c);
    EXPECT(k2c_toolparse_ncalls(p) == 2, "n %d", k2c_toolparse_ncalls(p));
    if (k2c_toolparse_ncalls(p) == 2) {
        EXPECT(k2c_toolparse_call(p, 0)->flags == K2C_TC_NO_END && !strcmp(k2c_toolparse_call(p, 0)->arguments, "{\"x\":1}"), "a flags %d", k2c_toolparse_call(p, 0)->flags);
        EXPECT(k2c_toolparse_call(p, 1)->flags == K2C_TC_NO_END && !strcmp(k2c_toolparse_call(p, 1)->name, "b"), "b flags %d", k2c_toolparse_call(p, 1)->flags);
    }
    k2c_toolparse_free(p);
    /* invalid JSON arguments, bad id, call without a section */
    p = parse_steps("text" CALL("get_time", "{\"tz\": ") "<|tool_calls_section_end|> after", 2, &c);
    EXPECT(k2c_toolparse_ncalls(p) == 1, "n %d", k2c_toolparse_ncalls(p));
    if (k2c_toolparse_ncalls(p) == 1) {
        const k2c_tool_call *a = k2c_toolparse_call(p, 0);
        EXPECT(a->flags == (K2C_TC_BAD_JSON | K2C_TC_BAD_ID) && !strcmp(a->arguments, "{\"tz\": ") && !strcmp(a->name, "get_time"),
               "flags %d name %s args %s", a->flags, a->name, a->arguments);
    }
    EXPECT(k2c_toolparse_flags(p) == K2C_TP_NO_SECTION_BEGIN, "flags %d", k2c_toolparse_flags(p));
    EXPECT(!strcmp(c.content, "text after"), "content '%s'", c.content);
    k2c_toolparse_free(p);
    /* truncated inside the arguments, inside the id, and inside a marker: the text is kept */
    const char *trunc[] = {
        SECTION("") "x" "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{\"a\": [1, 2",
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:",
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{}<|tool_call_e",
    };
    const char *want_args[] = {"{\"a\": [1, 2", "", "{}<|tool_call_e"};
    for (int k = 0; k < 3; k++) {
        p = parse_steps(trunc[k], 1, &c);
        EXPECT(k2c_toolparse_ncalls(p) == 1, "trunc %d n %d", k, k2c_toolparse_ncalls(p));
        if (k2c_toolparse_ncalls(p) == 1) {
            const k2c_tool_call *a = k2c_toolparse_call(p, 0);
            EXPECT(a->flags & K2C_TC_TRUNCATED, "trunc %d flags %d", k, a->flags);
            EXPECT(!strcmp(a->arguments, want_args[k]), "trunc %d args '%s'", k, a->arguments);
            EXPECT(!strcmp(c.args[0], want_args[k]), "trunc %d streamed args '%s'", k, c.args[0]);
        }
        EXPECT(k2c_toolparse_flags(p) & K2C_TP_NO_SECTION_END, "trunc %d parser flags %d", k, k2c_toolparse_flags(p));
        k2c_toolparse_free(p);
    }
    /* stray text inside the section is kept as content */
    p = parse_steps(SECTION(" oops " CALL("functions.f:0", "{}")), 0, &c);
    EXPECT(k2c_toolparse_flags(p) == K2C_TP_STRAY_TEXT && !strcmp(c.content, " oops "), "stray: %d '%s'", k2c_toolparse_flags(p), c.content);
    k2c_toolparse_free(p);
}

/* What the template renders for an assistant turn, the parser reads back. */
static void toolcall_template_roundtrip(void) {
    char *out = k2c_chat_render("[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"assistant\",\"content\":\"ok\",\"tool_calls\":["
                                "{\"id\":\"functions.a:0\",\"function\":{\"name\":\"a\",\"arguments\":{\"k\":\"v\"}}},"
                                "{\"id\":\"functions.b:1\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}]", NULL, 0, NULL, NULL);
    EXPECT(out != NULL, "%s", k2c_errmsg());
    if (!out) return;
    const char *body = strstr(out, "<|im_assistant|>assistant<|im_middle|>");
    EXPECT(body != NULL, "no assistant turn");
    if (body) {
        body += strlen("<|im_assistant|>assistant<|im_middle|>");
        size_t n = strlen(body) - strlen("<|im_end|>");
        k2c_toolparse *p = k2c_toolparse_new();
        k2c_toolparse_feed(p, body, n, NULL);
        k2c_toolparse_finish(p, NULL);
        size_t cl;
        const char *content = k2c_toolparse_content(p, &cl);
        EXPECT(cl == 2 && !memcmp(content, "ok", 2), "content %s", content);
        EXPECT(k2c_toolparse_ncalls(p) == 2 && k2c_toolparse_flags(p) == 0, "n %d flags %d", k2c_toolparse_ncalls(p), k2c_toolparse_flags(p));
        if (k2c_toolparse_ncalls(p) == 2)
            EXPECT(!strcmp(k2c_toolparse_call(p, 0)->arguments, "{\"k\": \"v\"}") && !strcmp(k2c_toolparse_call(p, 1)->name, "b"),
                   "args %s", k2c_toolparse_call(p, 0)->arguments);
        k2c_toolparse_free(p);
    }
    free(out);
}

int main(void) {
    run_test("chat_render_multi_turn_tools", render_multi_turn_with_tools);
    run_test("chat_render_system_and_defaults", render_system_first_and_no_tools);
    run_test("chat_render_bad_input", render_bad_input);
    run_test("toolcall_whole_and_streamed", toolcall_whole_and_streamed);
    run_test("toolcall_lookalikes_stay_content", toolcall_no_calls_and_lookalikes);
    run_test("toolcall_malformed", toolcall_malformed);
    run_test("toolcall_template_roundtrip", toolcall_template_roundtrip);
    return check_exit();
}
