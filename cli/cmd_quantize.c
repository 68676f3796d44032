/* k2c quantize: a checkpoint to a deepseek2 GGUF (model/quantize.c has the recipes). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_quantize(int argc, char **argv) {
    cli_args a;
    if (cli_parse(&a, argc, argv, "")) return 2;
    const char *in = cli_need(&a, "model"), *out = cli_need(&a, "out");
    k2c_quantize_opts o = {0};
    o.type = cli_need(&a, "type");
    o.type_experts = cli_str(&a, "type-experts", NULL);
    o.type_attn = cli_str(&a, "type-attn", NULL);
    o.type_embd = cli_str(&a, "type-embd", NULL);
    o.type_output = cli_str(&a, "type-output", NULL);
    o.threads = (int)cli_int(&a, "threads", 0);
    if (!in || !out || !o.type || cli_done(&a)) return 2;
    double t0 = k2c_now();
    if (k2c_quantize(in, out, &o) != 0) return cli_fail("quantize");
    k2c_log("quantize: wrote %s in %.1f s\n", out, k2c_now() - t0);
    return 0;
}
CLI_COMMAND(cmd_quantize_def, "quantize",
            "--model IN --type TYPE [--type-experts T] [--type-attn T] [--type-embd T] [--type-output T] [--threads N] --out OUT.gguf",
            "Write a model (Hugging Face folder in any stored format, or a GGUF) as a deepseek2 GGUF: TYPE is a ggml type "
            "(F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS) or a recipe (Q2_K Q3_K_M Q4_K_M Q6_K Q8_0).",
            cmd_quantize)
