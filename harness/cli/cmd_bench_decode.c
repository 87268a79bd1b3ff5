/* cmd_bench_decode.c: `raasbench bench decode`: decode speed of a GGUF model at several thread
 * counts, where the time goes (matrix-vector, attention plus policy, other), and llama.cpp's
 * speed (llama-cpp-python, through tools/ref_llamacpp.py) measured in the same run. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <limits.h>

#include "args.h"
#include "commands.h"
#include "model.h"
#include "tokenizer.h"

#define MAX_THREAD_COUNTS 8


rb_status bench_decode_run(const char *path, int threads, const int32_t *ids, int n_prompt,
                           int n_decode, const cell *c, bench_result *r, rb_err *e) {
    model *m = NULL;
    model_session *s = NULL;
    rb_status st = model_load(path, threads, &m, e);
    if (st) return st;
    const model_hparams *hp = model_get_hparams(m);
    model_cache_config cc = {.cell = c, .page_size = 16,
                             .dense_layers = 2, .max_tokens = n_prompt + n_decode, .seed = 1};
    if ((st = model_session_create(m, &cc, &s, e))) {
        model_destroy(m);
        return st;
    }
    float *logits = rb_malloc((size_t)hp->n_vocab * sizeof(float));
    model_session_prefill(s, ids, n_prompt, 0, logits);
    memset(r, 0, sizeof *r);
    int64_t t0 = rb_now_ns();
    for (int t = 0; t < n_decode; t++) {
        int next = model_argmax(logits, hp->n_vocab);
        model_session_forward(s, next, n_prompt + t, 0, logits);
        model_timing tm = model_session_last_timing(s);
        r->matvec_ns += tm.matvec_ns, r->attn_ns += tm.attn_ns, r->other_ns += tm.other_ns;
    }
    r->total_ns = rb_now_ns() - t0;
    r->tokens_per_s = n_decode / (r->total_ns * 1e-9);
    free(logits);
    model_session_destroy(s);
    model_destroy(m);
    return RB_OK;
}

typedef struct prefill_result {
    double tps, token_tps;         /* prompt tokens/s: batched, token by token (0: not run) */
    double cpu_tps, token_cpu_tps; /* the same per second of process CPU time (shared machines) */
    int same;                      /* the two prefills' logits equal bit for bit */
    model_timing tm;               /* of the batched prefill */
} prefill_result;

static double cpu_seconds(void) {
    struct timespec ts;
    RB_CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Prompt prefill speed: n ids through a fresh dense session, batched (model_session_prefill)
 * and, when token_too, token by token (model_session_forward, the path it replaces), with
 * the two last-token logits compared bit for bit. */
static rb_status bench_prefill(const char *path, int threads, const int32_t *ids, int n, int token_too,
                               prefill_result *r, rb_err *e) {
    memset(r, 0, sizeof *r);
    model *m = NULL;
    rb_status st = model_load(path, threads, &m, e);
    if (st) return st;
    const model_hparams *hp = model_get_hparams(m);
    policy_params dp;
    cell dense = {0};
    const policy_ops *ops = policy_find("dense", e);
    if (!ops) st = RB_EINTERNAL;
    if (!st) st = policy_params_for(ops, NULL, 0, &dp, e);
    if (!st) st = cells_init(&dense, ops, &dp, 0, NULL, NULL, e);
    model_cache_config cc = {.cell = &dense, .page_size = 16, .max_tokens = n + 1, .seed = 1};
    float *lg[2] = {rb_malloc((size_t)hp->n_vocab * sizeof(float)),
                    rb_malloc((size_t)hp->n_vocab * sizeof(float))};
    for (int pass = 0; pass < 1 + !!token_too && !st; pass++) {
        model_session *s = NULL;
        if ((st = model_session_create(m, &cc, &s, e))) break;
        double c0 = cpu_seconds();
        int64_t t0 = rb_now_ns();
        if (pass == 0) {
            model_session_prefill(s, ids, n, 0, lg[0]);
            r->tm = model_session_last_timing(s);
        } else {
            for (int i = 0; i < n; i++) model_session_forward(s, ids[i], i, 1, i == n - 1 ? lg[1] : NULL);
        }
        double tps = n / ((rb_now_ns() - t0) * 1e-9), cpu_tps = n / (cpu_seconds() - c0);
        if (pass == 0) r->tps = tps, r->cpu_tps = cpu_tps;
        else r->token_tps = tps, r->token_cpu_tps = cpu_tps;
        model_session_destroy(s);
    }
    r->same = token_too && !st && !memcmp(lg[0], lg[1], (size_t)hp->n_vocab * sizeof(float));
    free(lg[0]), free(lg[1]);
    free(dense.params_json);
    model_destroy(m);
    return st;
}

/* llama.cpp's tokens/s per thread count from the helper script; 0 where it gave none. */
static void bench_llamacpp(const char *path, const char *prompt, int n, const int *threads,
                           int n_threads, double *tps, char *note, size_t note_cap) {
    for (int i = 0; i < n_threads; i++) tps[i] = 0;
    note[0] = 0;
    const char *script = "tools/ref_llamacpp.py";
    FILE *f = fopen(script, "r");
    if (!f) {
        snprintf(note, note_cap, "%s not found (run from the repository root)", script);
        return;
    }
    fclose(f);
    /* single-quote the arguments for the shell */
    char cmd[4096], q_path[1024], q_prompt[1024];
    const char *srcs[2] = {path, prompt};
    char *dsts[2] = {q_path, q_prompt};
    for (int a = 0; a < 2; a++) {
        size_t o = 0;
        dsts[a][o++] = '\'';
        for (const char *c = srcs[a]; *c && o + 5 < 1024; c++) {
            if (*c == '\'') {
                memcpy(dsts[a] + o, "'\\''", 4);
                o += 4;
            } else {
                dsts[a][o++] = *c;
            }
        }
        dsts[a][o++] = '\'';
        dsts[a][o] = 0;
    }
    char tl[128] = "";
    for (int i = 0; i < n_threads; i++)
        snprintf(tl + strlen(tl), sizeof tl - strlen(tl), "%s%d", i ? "," : "", threads[i]);
    snprintf(cmd, sizeof cmd, "python3 %s bench --model %s --prompt %s --n %d --threads %s 2>/dev/null",
             script, q_path, q_prompt, n, tl);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(note, note_cap, "could not run python3");
        return;
    }
    char line[512], last[512] = "";
    while (fgets(line, sizeof line, p)) {
        int th;
        double x;
        if (sscanf(line, "llama.cpp threads=%d tokens_per_s=%lf", &th, &x) == 2) {
            for (int i = 0; i < n_threads; i++)
                if (threads[i] == th) tps[i] = x;
        } else {
            snprintf(last, sizeof last, "%s", line);
        }
    }
    int rc = pclose(p);
    if (rc != 0) {
        last[strcspn(last, "\n")] = 0;
        snprintf(note, note_cap, "llama.cpp reference unavailable (%s)", last[0] ? last : "python3 failed");
    }
}

static const char usage[] =
    "[--model M.gguf] [--prompt TEXT] [--tokens N] [--threads 1,2]\n"
    "                              [--policy P --budget L] [--no-ref]\n"
    "                              [--prefill N] [--prefill-token 0|1] [--device cpu|cuda]\n"
    "Decode speed (tokens/s) of the C forward at each thread count beside llama.cpp's\n"
    "(llama-cpp-python, same machine, same run), and where the time goes; prompt prefill\n"
    "speed (prompt tokens/s, batched) beside the token-by-token path's.";

int cmd_bench_decode(int argc, char **argv) {
    /* --device cuda is another experiment (the decode-length sweep of RQ2) with its own
     * options: cmd_bench_decode_gpu.c */
    for (int i = 0; i < argc; i++)
        if ((!strcmp(argv[i], "--device") && i + 1 < argc && !strcmp(argv[i + 1], "cuda")) ||
            !strcmp(argv[i], "--device=cuda"))
            return cmd_bench_decode_gpu(argc, argv);
    const char *path = "models/gemma-3-270m-q4_k_m.gguf", *prompt = "The capital of France is";
    const char *threads_s = "1,2", *policy = "dense", *device = "cpu";
    int n_decode = 64, budget = 0, no_ref = 0, help = 0, n_pos = 0, n_pf = 256, pf_token = 1;
    arg_spec specs[] = {
        {"model", ARG_STR, &path, "M.gguf", "model (default models/gemma-3-270m-q4_k_m.gguf)"},
        {"prompt", ARG_STR, &prompt, "TEXT", "prompt (default \"The capital of France is\")"},
        {"tokens", ARG_INT_IN(&n_decode, 1, 1 << 20), "N", "decode steps timed (default 64)"},
        {"threads", ARG_STR, &threads_s, "T1,T2", "thread counts (default 1,2)"},
        {"policy", ARG_STR, &policy, "P", "KV-cache policy of the global layers (default dense)"},
        {"budget", ARG_INT_IN(&budget, 0, INT_MAX), "L", "budget for --policy"},
        {"no-ref", ARG_FLAG, &no_ref, NULL, "skip llama.cpp"},
        {"device", ARG_STR, &device, "cpu|cuda", "cpu (this bench); cuda: the GPU decode-length "
                                                 "sweep (`bench decode --device cuda --help`)"},
        {"prefill", ARG_INT_IN(&n_pf, 0, 1 << 20), "N", "prompt tokens of the prefill figure: the prompt repeated "
                                         "(default 256; 0 skips it)"},
        {"prefill-token", ARG_INT_IN(&pf_token, 0, 1), "0|1", "also time the token-by-token prefill and "
                                                     "compare its logits (default 1)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    rb_err e = {0};
    if (args_parse("bench decode", usage, specs, argc, argv, NULL, 0, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    if (strcmp(device, "cpu")) {
        rb_fail(&e, RB_EINPUT, "--device", "'%s': expected cpu or cuda", device);
        return rb_err_print(&e);
    }
    int threads[MAX_THREAD_COUNTS], n_threads = 0;
    if (args_int_list("--threads", threads_s, threads, MAX_THREAD_COUNTS, &n_threads, &e))
        return rb_err_print(&e);
    for (int i = 0; i < n_threads; i++)
        if (threads[i] < 1 || threads[i] > 256) {
            rb_fail(&e, RB_EINPUT, "--threads", "thread counts must be in [1, 256]");
            return rb_err_print(&e);
        }
    if (n_decode < 1) {
        rb_fail(&e, RB_EINPUT, "--tokens", "must be >= 1");
        return rb_err_print(&e);
    }
    if (n_pf < 0 || n_pf > (1 << 20) || (pf_token != 0 && pf_token != 1)) {
        rb_fail(&e, RB_EINPUT, "--prefill", "--prefill must be in [0, 2^20], --prefill-token 0 or 1");
        return rb_err_print(&e);
    }
    const policy_ops *ops = policy_find_choice(policy, &e);
    if (!ops) return rb_err_print(&e);
    policy_params params;
    if (policy_params_resolve(ops, NULL, 0, &params, &e)) return rb_err_print(&e);
    if (!(ops->flags & POLICY_BUDGET_FREE) && budget < 1) {
        rb_fail(&e, RB_EINPUT, "--budget", "required with --policy %s", policy);
        return rb_err_print(&e);
    }
    cell c;
    if (cells_init(&c, ops, &params, budget, NULL, NULL, &e)) return rb_err_print(&e);

    /* tokenize once with a model handle of its own */
    model *m = NULL;
    tokenizer *tok = NULL;
    int32_t *ids = NULL;
    int n_prompt = 0;
    char name[128];
    if (model_load(path, 1, &m, &e) || tokenizer_load(model_gguf(m), &tok, &e) ||
        tokenizer_encode(tok, prompt, tokenizer_add_bos(tok), &ids, &n_prompt, &e)) {
        tokenizer_destroy(tok);
        model_destroy(m);
        free(c.params_json);
        return rb_err_print(&e);
    }
    snprintf(name, sizeof name, "%s", model_get_hparams(m)->name);
    if (n_pf >= model_get_hparams(m)->n_ctx_train) n_pf = model_get_hparams(m)->n_ctx_train - 1;
    tokenizer_destroy(tok);
    model_destroy(m);
    /* the prefill prompt: the prompt's tokens repeated (its first token, BOS, once) */
    int32_t *pf_ids = rb_malloc((size_t)(n_pf > 0 ? n_pf : 1) * sizeof(int32_t));
    int skip = n_prompt > 1 ? 1 : 0;
    for (int i = 0; i < n_pf; i++)
        pf_ids[i] = i < n_prompt ? ids[i] : ids[skip + (i - n_prompt) % (n_prompt - skip)];

    printf("# bench decode: %s, prompt %d tokens, %d decode steps, policy %s%s\n", name,
           n_prompt, n_decode, policy, (ops->flags & POLICY_BUDGET_FREE) ? " (attention only)" : "");
    bench_result res[MAX_THREAD_COUNTS];
    for (int i = 0; i < n_threads; i++) {
        prefill_result pr;
        if (bench_decode_run(path, threads[i], ids, n_prompt, n_decode, &c, &res[i], &e) ||
            (n_pf > 0 && bench_prefill(path, threads[i], pf_ids, n_pf, pf_token, &pr, &e))) {
            free(ids), free(pf_ids);
            free(c.params_json);
            return rb_err_print(&e);
        }
        double tot = (double)res[i].total_ns;
        printf("raasbench threads=%d tokens_per_s=%.2f  matvec %.1f%%  attention+policy %.1f%%  "
               "other %.1f%%\n", threads[i], res[i].tokens_per_s, 100.0 * res[i].matvec_ns / tot,
               100.0 * res[i].attn_ns / tot,
               100.0 * (tot - res[i].matvec_ns - res[i].attn_ns) / tot);
        if (n_pf > 0) {
            double tot_pf = (double)pr.tm.total_ns;
            printf("raasbench threads=%d prefill_tokens_per_s=%.2f (per cpu-second %.2f)  matmat %.1f%%  "
                   "attention+policy %.1f%%  (%d prompt tokens)\n", threads[i], pr.tps, pr.cpu_tps,
                   100.0 * pr.tm.matvec_ns / tot_pf, 100.0 * pr.tm.attn_ns / tot_pf, n_pf);
            if (pf_token)
                printf("raasbench threads=%d prefill token_by_token_tokens_per_s=%.2f (per cpu-second %.2f)  "
                       "batched/token-by-token %.2fx (cpu %.2fx)  logits %s\n", threads[i], pr.token_tps,
                       pr.token_cpu_tps, pr.tps / pr.token_tps, pr.cpu_tps / pr.token_cpu_tps,
                       pr.same ? "bit-identical" : "DIFFER");
        }
        fflush(stdout);
    }
    free(ids), free(pf_ids);
    free(c.params_json);
    if (no_ref) return 0;
    double ref[MAX_THREAD_COUNTS];
    char note[600];
    bench_llamacpp(path, prompt, n_decode, threads, n_threads, ref, note, sizeof note);
    for (int i = 0; i < n_threads; i++) {
        if (ref[i] > 0)
            printf("llama.cpp threads=%d tokens_per_s=%.2f  ratio raasbench/llama.cpp %.2f\n",
                   threads[i], ref[i], res[i].tokens_per_s / ref[i]);
        else
            printf("llama.cpp threads=%d: %s\n", threads[i], note[0] ? note : "no figure");
    }
    return 0;
}
