/* Shared by cmd_posttrain.c and cmd_rl.c: running one task of a task file on an agent session. */
#ifndef K2C_CLI_POSTTRAIN_H
#define K2C_CLI_POSTTRAIN_H
#include "k2c.h"

int pt_workdir_make(const k2c_task *t, char dir[64]);      /* the task's files in a fresh folder ("" without) */
void pt_workdir_remove(char dir[64]);
/* Declares the task's tools, runs it from a fresh environment and verifies it (r freed by the caller). */
int pt_run_task(k2c_agent *ag, const k2c_task *t, float temperature, uint64_t seed, int max_turns, int max_tokens,
                k2c_agent_result *r, k2c_verdict *v);
#endif
