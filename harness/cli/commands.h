/* commands.h: the subcommands of the raasbench binary. Each takes the arguments after its
 * name and returns the process exit code (0 ok, 1 internal failure, 2 bad input). Each
 * lives in harness/cli/cmd_<name>.c and answers --help. */
#ifndef COMMANDS_H
#define COMMANDS_H

#include <stdint.h>

#include "cells.h"

int cmd_synth(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_lifecycle(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_policies(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_merge(int argc, char **argv);
/* `raasbench bench decode` (cmd_bench_decode.c), reached through cmd_bench. */
int cmd_bench_decode(int argc, char **argv);
/* `raasbench bench decode --device cuda` (cmd_bench_decode_gpu.c): the RQ2 length sweep. */
int cmd_bench_decode_gpu(int argc, char **argv);
/* `raasbench bench eval` (cmd_bench_eval.c), reached through cmd_bench. */
int cmd_bench_eval(int argc, char **argv);

/* One timed single-stream decode (cmd_bench_decode.c): prefill ids, then n_decode greedy
 * steps with cell c on the global layers, `threads` matrix-vector threads. */
typedef struct bench_result {
    double tokens_per_s;
    int64_t matvec_ns, attn_ns, other_ns, total_ns;
} bench_result;
rb_status bench_decode_run(const char *path, int threads, const int32_t *ids, int n_prompt,
                           int n_decode, const cell *c, bench_result *r, rb_err *e);

#endif
