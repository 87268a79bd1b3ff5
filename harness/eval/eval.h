/* eval.h: graded evaluation of free-running decodes under a budget (docs/DESIGN.md §9).
 *
 * For every task and every cell (policy, parameters, budget; harness/engine/cells.h): the
 * task's prompt is run once through a dense session and captured (model_prompt_capture);
 * each cell loads the captured prompt into its own session and decodes greedily with its
 * policy managing the real model's KV cache, until the answer is complete
 * (answer_complete), the model ends the sequence, the text reaches a stop sequence, or
 * max_tokens; then the answer is extracted and graded exactly (answer.h).
 *
 * Work is done a task at a time (the prompt capture shared by the task's cells), tasks
 * spread over threads, each thread with its own model handle (the weights are mapped once
 * by the system). Each finished task is handed to a callback (eval_run's on_task), so a
 * caller can store it at once and a killed evaluation loses no finished task. */
#ifndef EVAL_H
#define EVAL_H

#include <stdint.h>

#include "answer.h"
#include "cells.h"
#include "model.h"
#include "rb.h"
#include "tasks.h"

typedef enum {
    EVAL_STOP_ANSWER = 0, /* a complete marked answer */
    EVAL_STOP_EOS = 1,    /* the model ended the sequence */
    EVAL_STOP_MAX = 2,    /* max_tokens generated */
    EVAL_STOP_SEQUENCE = 3, /* the text reached a stop sequence (eval_config.stop): the model
                               began the next few-shot problem; the text is cut before it */
} eval_stop;

/* One (task, cell). */
typedef struct eval_result {
    int correct;                 /* the extracted answer equals the task's answer */
    int answered;                /* an answer was extracted */
    char extracted[48];          /* canonical (answer_format), "" when none */
    char *generated;             /* malloc'd: the generated text */
    int n_generated;             /* tokens */
    int stop;                    /* eval_stop */
    int64_t peak_kv_bytes;       /* resident K+V bytes, all layers, at the peak */
    double mean_resident_tokens; /* per KV head, mean over decode steps and the policy's layers
                                    (token slots held, pages whole) */
    double wall_s;               /* this cell's decode of this task (the shared prompt apart) */
} eval_result;

typedef struct eval_config {
    const char *model_path;
    const task_set *tasks;
    const char *template_text;   /* for question tasks (NULL: the question alone) */
    const cell *cells;
    int n_cells;
    int max_tokens;              /* generated tokens per task and cell */
    const char *const *stop;     /* [n_stop] stop sequences ("Question:"), may be NULL */
    int n_stop;
    int page_size, dense_layers;
    int threads;                 /* workers over tasks (>= 1) */
    model_device device;         /* cpu, or cuda: each worker's sessions on the GPU (each
                                  * worker uploads its own copy of the weights) */
    uint64_t seed;
    const uint8_t *todo;         /* [n_tasks] 1: run this task (NULL: every task) */
    int progress;                /* draw a progress bar on stderr */
    /* Called once per finished task, from the worker thread (serialised by the engine):
     * results[0..n_cells) in cell order, owned by the engine (copy what you keep). Return
     * non-zero (and fill e) to stop the evaluation. */
    rb_status (*on_task)(void *ctx, int task_index, const eval_result *results, rb_err *e);
    void *ctx;
} eval_config;

/* Run the evaluation. Fails on a model that cannot be loaded, a prompt that does not fit the
 * context, a cell the model refuses (budget), or the callback's failure. */
rb_status eval_run(const eval_config *c, rb_err *e);

void eval_result_free(eval_result *r);

/* Accuracy's Wilson score interval at 95% (z = 1.96): lo, hi in [0, 1]; n = 0 gives 0, 1. */
void eval_wilson(int correct, int n, double *lo, double *hi);

#endif
