/* model_cuda.c: the forward of model.c (gemma3, qwen2, llama) on the GPU (model_cuda.h): the
 * weights uploaded once in their GGUF formats into one device arena, every layer's KV cache
 * and policy in kernels/cuda/kv_cuda.h's device pages, the arithmetic in
 * kernels/cuda/fwd_cuda.h's kernels. Plain C with no CUDA call of its own, so it builds
 * (and fails cleanly at model_cuda_load) without CUDA.
 *
 * A step reads its token and position from device memory (tokens[pos], the session's token
 * history, and pos), so one step is captured once as a CUDA graph and replayed: a prefill
 * graph (every layer with prompt semantics, then pos += 1), a head graph (final product,
 * greedy choice written to tokens[pos]) and a decode graph (every layer with decode
 * semantics, pos += 1, then the head). Greedy decoding feeds each step's choice to the next
 * through tokens[] without the host: the host only queues graph launches and reads the
 * tokens back in batches. If a graph cannot be captured (a module that queues something a
 * graph cannot hold), the session runs the same launches directly and says so
 * (model_cuda_session_graphs).
 *
 * Per layer (model_session_forward's order): q, k, v products (biases folded in) in one
 * launch; q/k norm and RoPE; kvd_step (store k and v, run the policy, attend); the output
 * product; post-attention norm (gemma), residual add and the FFN norm in one kernel; gate
 * and up in one launch; down with gelu_tanh/silu(gate) * up formed as it reads; post-FFW
 * norm, residual and the next layer's (or the output) norm in one kernel. The first
 * layer's norm is fused into the embedding. */
#include "model_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cells.h"
#include "cuda/attn_cuda.h"
#include "cuda/fwd_cuda.h"
#include "cuda/kv_cuda.h"
#include "gguf.h"
#include "quant.h"

typedef struct dev_layer {
    fwd_mat wq, wk, wv, wo, gate, up, down;
    float *attn_norm, *ffn_norm, *post_attn_norm, *post_ffw_norm; /* [n_embd]; post_* gemma */
    float *q_norm, *k_norm;                                        /* [head_dim] or NULL */
    float *bq, *bk, *bv;                                           /* biases or NULL */
} dev_layer;

struct model_cuda {
    const model *m;
    attn_cuda *c;
    uint8_t *arena; /* every weight, 256-byte aligned, FWD_PAD bytes after each matrix */
    size_t arena_bytes, arena_used;
    dev_layer *layers;
    fwd_mat tok_embd, output;
    float *output_norm, *rope_factors;
    float rope_pos_scale;
    char desc[256];
};

/* How many events a session keeps: two per forward, one per token of a generate batch. */
#define GEN_BATCH 64

/* The stages RB_CUDA_PROFILE times (kvd_step split between window and global layers). */
enum {
    PROF_EMBED, PROF_QKV, PROF_QK_FINISH, PROF_KVD_WINDOW, PROF_KVD_GLOBAL, PROF_O, PROF_NORM_ATTN,
    PROF_GATE_UP, PROF_DOWN, PROF_NORM_FFN, PROF_HEAD, PROF_ADVANCE, PROF_N
};
static const char *const prof_name[PROF_N] = {
    "embed+norm", "q/k/v matvec", "qk_finish", "kvd_step window", "kvd_step global", "o matvec",
    "residual-norm attn", "gate/up matvec", "down matvec", "residual-norm ffn", "head matvec",
    "argmax/advance",
};
#define PROF_EVENTS 512

typedef struct model_cuda_session model_cuda_session;
static void print_profile(const model_cuda_session *s);

struct model_cuda_session {
    model_cuda *g;
    kvd_cache *kc;
    int max_tokens;
    uint8_t *scratch; /* one device allocation holding everything below */
    float *x, *xn, *o, *att, *gate, *up, *logits;
    float *q, *k, *v;  /* [n_layers, Hq*d], [n_layers, Hkv*d] x2: post-RoPE, per layer */
    int32_t *tokens;   /* [max_tokens + 1]: tokens[p] is the input at position p */
    int32_t *state;    /* [0] the next position, [1] the last greedy token */
    uint64_t *argmax;
    fwd_graph *gr_prefill, *gr_decode, *gr_head;
    int use_graphs;    /* 0 after a failed capture, or RB_CUDA_GRAPHS=0 */
    char graph_note[1100];
    fwd_events *ev;    /* [GEN_BATCH + 1] */
    int32_t *sel;      /* host [max_tokens]: a selection read back (layer_attended) */
    double last_ms;
    /* RB_CUDA_PROFILE=1: decode steps run without graphs, an event after every stage */
    int profile, profiling_now, n_marks;
    fwd_events *pev;     /* [PROF_EVENTS] */
    int8_t mark_cat[PROF_EVENTS];
    float *prof;         /* [prof_n][PROF_N]: per token, the time of each stage summed over layers */
    int prof_n, prof_cap;
};

int model_cuda_available(void) {
#ifdef RB_HAVE_CUDA
    return attn_cuda_device_count() > 0;
#else
    return 0;
#endif
}

/* ---- weights ---- */

static size_t round256(size_t n) { return (n + 255) / 256 * 256; }

/* Place n bytes of host data in the arena (dry: only count them); *dev gets the address. */
static rb_status put(model_cuda *g, int dry, const void *host, size_t n, size_t pad, void **dev,
                     rb_err *e) {
    size_t at = g->arena_used;
    g->arena_used += round256(n + pad);
    if (dry) {
        *dev = NULL;
        return RB_OK;
    }
    *dev = g->arena + at;
    return attn_cuda_upload(g->c, *dev, host, n, e);
}

static rb_status put_matrix(model_cuda *g, int dry, const char *name, int rows, int cols,
                            fwd_mat *out, rb_err *e) {
    const gguf_tensor *t = gguf_find_tensor(model_gguf(g->m), name);
    /* model_load checked shape, type and size already */
    RB_CHECK(t && t->ne[0] == cols && t->ne[1] == rows);
    size_t n = (size_t)rows * quant_row_bytes(t->type, cols);
    void *dev;
    rb_status st = put(g, dry, t->data, n, FWD_PAD, &dev, e);
    *out = (fwd_mat){.w = dev, .type = (int)t->type, .rows = rows, .cols = cols};
    return st;
}

/* A vector tensor (norm weight, bias) converted to float32 as model.c's get_vector does;
 * *out stays NULL when the tensor is absent. */
static rb_status put_vector(model_cuda *g, int dry, const char *name, int n, float **out,
                            rb_err *e) {
    const gguf_tensor *t = gguf_find_tensor(model_gguf(g->m), name);
    *out = NULL;
    if (!t) return RB_OK;
    float *h = rb_malloc(sizeof(float) * (size_t)n);
    quant_dequant_row_ref(t->type, t->data, h, n);
    void *dev;
    rb_status st = put(g, dry, h, sizeof(float) * (size_t)n, 0, &dev, e);
    free(h);
    *out = dev;
    return st;
}

static rb_status put_all(model_cuda *g, int dry, rb_err *e) {
    const model_hparams *hp = model_get_hparams(g->m);
    const int E = hp->n_embd, F = hp->n_ff, D = hp->head_dim;
    const int QD = hp->n_q_heads * D, KD = hp->n_kv_heads * D;
    rb_status st;
    g->arena_used = 0;
    if ((st = put_matrix(g, dry, "token_embd.weight", hp->n_vocab, E, &g->tok_embd, e))) return st;
    if (gguf_find_tensor(model_gguf(g->m), "output.weight")) {
        if ((st = put_matrix(g, dry, "output.weight", hp->n_vocab, E, &g->output, e))) return st;
    } else {
        g->output = g->tok_embd; /* tied */
    }
    if ((st = put_vector(g, dry, "output_norm.weight", E, &g->output_norm, e))) return st;
    g->rope_factors = NULL;
    const float *rf = model_rope_freq_factors(g->m);
    if (rf) {
        void *dev;
        if ((st = put(g, dry, rf, sizeof(float) * (size_t)(D / 2), 0, &dev, e))) return st;
        g->rope_factors = dev;
    }
    for (int il = 0; il < hp->n_layers; il++) {
        dev_layer *L = &g->layers[il];
        char n[128];
#define MAT(field, nm, rows, cols)                                                             \
    snprintf(n, sizeof n, "blk.%d." nm ".weight", il);                                         \
    if ((st = put_matrix(g, dry, n, rows, cols, &L->field, e))) return st
#define VEC(field, nm, len)                                                                    \
    snprintf(n, sizeof n, "blk.%d." nm, il);                                                   \
    if ((st = put_vector(g, dry, n, len, &L->field, e))) return st
        MAT(wq, "attn_q", QD, E);
        MAT(wk, "attn_k", KD, E);
        MAT(wv, "attn_v", KD, E);
        MAT(wo, "attn_output", E, QD);
        MAT(gate, "ffn_gate", F, E);
        MAT(up, "ffn_up", F, E);
        MAT(down, "ffn_down", E, F);
        VEC(attn_norm, "attn_norm.weight", E);
        VEC(ffn_norm, "ffn_norm.weight", E);
        VEC(bq, "attn_q.bias", QD);
        VEC(bk, "attn_k.bias", KD);
        VEC(bv, "attn_v.bias", KD);
        if (hp->arch == MODEL_ARCH_GEMMA3) {
            VEC(post_attn_norm, "post_attention_norm.weight", E);
            VEC(post_ffw_norm, "post_ffw_norm.weight", E);
            VEC(q_norm, "attn_q_norm.weight", D);
            VEC(k_norm, "attn_k_norm.weight", D);
        }
#undef MAT
#undef VEC
    }
    return RB_OK;
}

rb_status model_cuda_load(const model *m, model_cuda **out, rb_err *e) {
    *out = NULL;
#ifdef RB_HAVE_CUDA
    const int have_cuda = 1;
#else
    const int have_cuda = 0;
#endif
    if (!have_cuda) return rb_fail(e, RB_EINPUT, "--device cuda", "no CUDA in this build");
    if (attn_cuda_device_count() < 1)
        return rb_fail(e, RB_EINPUT, "--device cuda", "no usable CUDA device");
    const model_hparams *hp = model_get_hparams(m);
    model_cuda *g = rb_calloc(1, sizeof *g);
    g->m = m;
    g->layers = rb_calloc((size_t)hp->n_layers, sizeof(dev_layer));
    g->rope_pos_scale = model_rope_pos_scale(m);
    rb_status st = attn_cuda_create(&g->c, e);
    if (!st) st = put_all(g, 1, e); /* sizes only */
    if (!st) {
        g->arena_bytes = g->arena_used;
        void *p;
        st = attn_cuda_alloc(g->c, g->arena_bytes, &p, e);
        if (st) {
            size_t fr = 0, tot = 0;
            fwd_cuda_mem_info(&fr, &tot, NULL);
            st = rb_fail(e, RB_EINTERNAL, "--device cuda",
                         "the weights need %zu MiB of device memory, %zu MiB free", g->arena_bytes >> 20,
                         fr >> 20);
        } else {
            g->arena = p;
        }
    }
    if (!st) st = put_all(g, 0, e);
    if (st) {
        model_cuda_destroy(g);
        return st;
    }
    attn_cuda_describe(g->c, g->desc, sizeof g->desc);
    *out = g;
    return RB_OK;
}

void model_cuda_destroy(model_cuda *g) {
    if (!g) return;
    if (g->c) attn_cuda_free(g->c, g->arena);
    attn_cuda_destroy(g->c);
    free(g->layers);
    free(g);
}

void model_cuda_describe(const model_cuda *g, char *buf, size_t n) {
    if (!buf || !n) return;
    snprintf(buf, n, "%s", g ? g->desc : "no device");
}

int64_t model_cuda_weight_bytes(const model_cuda *g) { return g ? (int64_t)g->arena_bytes : 0; }

/* ---- sessions ---- */

/* Every layer's device policy, as model_session_create's layer_stepper chooses it. */
static rb_status layer_config(const model *m, const model_cache_config *cc, int il,
                              layer_role role, kvd_layer *out, rb_err *e) {
    const model_hparams *hp = model_get_hparams(m);
    layer_policy lp;
    rb_status st = cells_layer_policy(role, cc->cell, hp->sliding_window[il], cc->max_tokens, &lp, e);
    if (st) return st;
    return kvd_layer_from_policy(lp.ops, &lp.params, lp.budget, out, e);
}

static rb_status kv_create(model_cuda *g, const model_cache_config *cc, const kvd_layer *layers,
                           int n_layers, kvd_cache **out, rb_err *e) {
    const model_hparams *hp = model_get_hparams(g->m);
    kvd_config cfg = {
        .n_layers = n_layers, .n_q_heads = hp->n_q_heads, .n_kv_heads = hp->n_kv_heads,
        .head_dim = hp->head_dim, .page_size = cc->page_size, .max_tokens = cc->max_tokens,
        .attn_scale = hp->attn_scale, .kv_dtype = ATTN_CUDA_F16, .layers = layers,
    };
    return kvd_create(g->c, &cfg, out, e);
}

rb_status model_cuda_session_create(model_cuda *g, const model_cache_config *cc,
                                    model_cuda_session **out, rb_err *e) {
    *out = NULL;
    const model_hparams *hp = model_get_hparams(g->m);
    if (cc->measure)
        return rb_fail(e, RB_EINPUT, "--device cuda",
                       "measuring against dense attention (recall, output error) runs on the CPU only");
    if (cc->max_tokens < 1) return rb_fail(e, RB_EINPUT, "max tokens", "must be >= 1");
    kvd_layer *layers = rb_calloc((size_t)hp->n_layers, sizeof(kvd_layer));
    rb_status st = RB_OK;
    int uses = 0;
    for (int il = 0; il < hp->n_layers && !st; il++) {
        layer_role role = cells_layer_role(il, hp->sliding_window[il], cc->dense_layers);
        uses |= role == LAYER_POLICY;
        st = layer_config(g->m, cc, il, role, &layers[il], e);
    }
    /* As on the CPU: a budget the policy refuses is refused even when no layer runs it. */
    if (!st && !uses) {
        kvd_layer probe;
        kvd_cache *pk = NULL;
        st = layer_config(g->m, cc, 0, LAYER_POLICY, &probe, e);
        if (!st) st = kv_create(g, cc, &probe, 1, &pk, e);
        kvd_destroy(pk);
    }
    model_cuda_session *s = rb_calloc(1, sizeof *s);
    s->g = g;
    s->max_tokens = cc->max_tokens;
    if (!st) st = kv_create(g, cc, layers, hp->n_layers, &s->kc, e);
    free(layers);
    if (st) {
        model_cuda_session_destroy(s);
        return st;
    }

    const size_t E = (size_t)hp->n_embd, F = (size_t)hp->n_ff, V = (size_t)hp->n_vocab;
    const size_t QD = (size_t)hp->n_q_heads * hp->head_dim, KD = (size_t)hp->n_kv_heads * hp->head_dim;
    const size_t NL = (size_t)hp->n_layers, T = (size_t)cc->max_tokens + 1;
    size_t sizes[] = {E * 4, E * 4, E * 4, QD * 4, F * 4, F * 4, V * 4, NL * QD * 4, NL * KD * 4,
                      NL * KD * 4, T * 4, 16, 8};
    const int n_buf = (int)(sizeof sizes / sizeof sizes[0]);
    size_t total = 0;
    for (int i = 0; i < n_buf; i++) total += round256(sizes[i]);
    void *p;
    if ((st = attn_cuda_alloc(g->c, total, &p, e))) {
        model_cuda_session_destroy(s);
        return st;
    }
    s->scratch = p;
    void *ptrs[13];
    size_t at = 0;
    for (int i = 0; i < n_buf; i++) {
        ptrs[i] = s->scratch + at;
        at += round256(sizes[i]);
    }
    s->x = ptrs[0], s->xn = ptrs[1], s->o = ptrs[2], s->att = ptrs[3], s->gate = ptrs[4];
    s->up = ptrs[5], s->logits = ptrs[6], s->q = ptrs[7], s->k = ptrs[8], s->v = ptrs[9];
    s->tokens = ptrs[10], s->state = ptrs[11], s->argmax = ptrs[12];
    /* zeroes: the state, the greedy accumulator, the token history */
    int32_t *zeros = rb_calloc(T, sizeof(int32_t));
    st = attn_cuda_upload(g->c, s->tokens, zeros, T * 4, e);
    if (!st) st = attn_cuda_upload(g->c, s->state, zeros, 16, e);
    if (!st) st = attn_cuda_upload(g->c, s->argmax, zeros, 8, e);
    free(zeros);
    if (!st) st = fwd_cuda_events_create(GEN_BATCH + 1, &s->ev, e);
    if (st) {
        model_cuda_session_destroy(s);
        return st;
    }
    const char *env = getenv("RB_CUDA_GRAPHS");
    s->use_graphs = !(env && !strcmp(env, "0"));
    if (!s->use_graphs) snprintf(s->graph_note, sizeof s->graph_note, "off (RB_CUDA_GRAPHS=0)");
    env = getenv("RB_CUDA_PROFILE");
    s->profile = env && !strcmp(env, "1");
    if (s->profile && (st = fwd_cuda_events_create(PROF_EVENTS, &s->pev, e))) {
        model_cuda_session_destroy(s);
        return st;
    }
    *out = s;
    return RB_OK;
}

void model_cuda_session_destroy(model_cuda_session *s) {
    if (!s) return;
    if (s->prof_n > 0) print_profile(s);
    free(s->prof);
    fwd_cuda_events_destroy(s->pev);
    fwd_cuda_graph_destroy(s->gr_prefill);
    fwd_cuda_graph_destroy(s->gr_decode);
    fwd_cuda_graph_destroy(s->gr_head);
    fwd_cuda_events_destroy(s->ev);
    kvd_destroy(s->kc);
    free(s->sel);
    if (s->scratch) attn_cuda_free(s->g->c, s->scratch);
    free(s);
}

/* ---- one step, queued ---- */

static rb_status mv1(attn_cuda *c, fwd_mat m, const float *x, const float *bias, float *y,
                     rb_err *e) {
    fwd_mv j = {.m = m, .x = x, .bias = bias, .y = y};
    return fwd_cuda_matvec(c, &j, 1, 0, NULL, e);
}

/* RB_CUDA_PROFILE: an event after a stage of category cat (a no-op unless profiling). */
static rb_status mark(model_cuda_session *s, int cat, rb_err *e) {
    if (!s->profiling_now || s->n_marks >= PROF_EVENTS) return RB_OK;
    s->mark_cat[s->n_marks] = (int8_t)cat;
    return fwd_cuda_event_record(s->g->c, s->pev, s->n_marks++, e);
}

/* Every layer of one token at tokens[*pos], *pos, then *pos += 1. */
static rb_status queue_layers(model_cuda_session *s, int prefill, rb_err *e) {
    model_cuda *g = s->g;
    attn_cuda *c = g->c;
    const model_hparams *hp = model_get_hparams(g->m);
    const int E = hp->n_embd, D = hp->head_dim, Hq = hp->n_q_heads, Hkv = hp->n_kv_heads;
    const int QD = Hq * D, KD = Hkv * D, gemma = hp->arch == MODEL_ARCH_GEMMA3;
    const float eps = hp->rms_eps;
    int32_t *pos = s->state;
    /* llama.cpp scales gemma's embedding by sqrtf(n_embd) in float */
    rb_status st = fwd_cuda_embed(c, g->tok_embd, s->tokens, pos, gemma ? sqrtf((float)E) : 1.0f,
                                  s->x, g->layers[0].attn_norm, eps, s->xn, e);
    if (!st) st = mark(s, PROF_EMBED, e);
    for (int il = 0; il < hp->n_layers && !st; il++) {
        const dev_layer *L = &g->layers[il];
        float *q = s->q + (size_t)il * QD, *k = s->k + (size_t)il * KD, *v = s->v + (size_t)il * KD;
        fwd_mv qkv[3] = {
            {.m = L->wq, .x = s->xn, .bias = L->bq, .y = q},
            {.m = L->wk, .x = s->xn, .bias = L->bk, .y = k},
            {.m = L->wv, .x = s->xn, .bias = L->bv, .y = v},
        };
        int local = hp->sliding_window[il] != 0;
        fwd_rope rope = {.neox = hp->rope_neox, .base = hp->rope_base[il],
                         .pos_scale = local ? 1.0f : g->rope_pos_scale,
                         .freq_factors = g->rope_factors};
        if ((st = fwd_cuda_matvec(c, qkv, 3, 0, NULL, e)) || (st = mark(s, PROF_QKV, e)) ||
            (st = fwd_cuda_qk_finish(c, q, Hq, L->q_norm, k, Hkv, L->k_norm, D, eps, pos, &rope, e)) ||
            (st = mark(s, PROF_QK_FINISH, e)))
            break;
        kvd_step(s->kc, il, prefill, pos, q, k, v, s->att);
        if ((st = mark(s, local ? PROF_KVD_WINDOW : PROF_KVD_GLOBAL, e)) ||
            (st = mv1(c, L->wo, s->att, NULL, s->o, e)) || (st = mark(s, PROF_O, e)) ||
            (st = fwd_cuda_residual_norm(c, s->o, gemma ? L->post_attn_norm : NULL, s->x,
                                         L->ffn_norm, E, eps, s->xn, e)) ||
            (st = mark(s, PROF_NORM_ATTN, e)))
            break;
        fwd_mv gu[2] = {
            {.m = L->gate, .x = s->xn, .y = s->gate},
            {.m = L->up, .x = s->xn, .y = s->up},
        };
        fwd_mv down = {.m = L->down, .x = s->gate, .x2 = s->up,
                       .act = gemma ? FWD_ACT_GELU_TANH : FWD_ACT_SILU, .y = s->o};
        const float *next = il + 1 < hp->n_layers ? g->layers[il + 1].attn_norm : g->output_norm;
        if ((st = fwd_cuda_matvec(c, gu, 2, 0, NULL, e)) || (st = mark(s, PROF_GATE_UP, e)) ||
            (st = fwd_cuda_matvec(c, &down, 1, 0, NULL, e)) || (st = mark(s, PROF_DOWN, e)) ||
            (st = fwd_cuda_residual_norm(c, s->o, gemma ? L->post_ffw_norm : NULL, s->x, next, E,
                                         eps, s->xn, e)) ||
            (st = mark(s, PROF_NORM_FFN, e)))
            break;
    }
    if (!st) st = fwd_cuda_advance(c, pos, 1, NULL, NULL, 0, NULL, e);
    if (!st) st = mark(s, PROF_ADVANCE, e);
    return st;
}

/* The logits of the normed residual (s->xn), the greedy choice into tokens[*pos] and
 * state[1]. */
static rb_status queue_head(model_cuda_session *s, rb_err *e) {
    model_cuda *g = s->g;
    const model_hparams *hp = model_get_hparams(g->m);
    fwd_mv j = {.m = g->output, .x = s->xn, .y = s->logits};
    rb_status st = fwd_cuda_matvec(g->c, &j, 1, hp->final_softcap, s->argmax, e);
    if (!st) st = mark(s, PROF_HEAD, e);
    if (!st)
        st = fwd_cuda_advance(g->c, s->state, 0, s->argmax, s->tokens, s->max_tokens, s->state + 1, e);
    if (!st) st = mark(s, PROF_ADVANCE, e);
    return st;
}

enum { RUN_PREFILL = 0, RUN_DECODE = 1, RUN_HEAD = 2 };

static rb_status queue_kind(model_cuda_session *s, int kind, rb_err *e) {
    rb_status st = RB_OK;
    if (kind == RUN_PREFILL) st = queue_layers(s, 1, e);
    else if (kind == RUN_DECODE) st = queue_layers(s, 0, e);
    if (!st && kind != RUN_PREFILL) st = queue_head(s, e);
    return st;
}

/* One decode step's launches without a graph, an event after each stage; waits for it and
 * adds a row of per-stage times (summed over layers) to s->prof. */
static rb_status run_profiled(model_cuda_session *s, rb_err *e) {
    s->profiling_now = 1;
    s->n_marks = 0;
    rb_status st = mark(s, -1, e);
    if (!st) st = queue_kind(s, RUN_DECODE, e);
    s->profiling_now = 0;
    if (st) return st;
    if (s->prof_n == s->prof_cap) {
        s->prof_cap = s->prof_cap ? 2 * s->prof_cap : 64;
        s->prof = rb_realloc(s->prof, sizeof(float) * PROF_N * (size_t)s->prof_cap);
    }
    float *row = s->prof + (size_t)s->prof_n * PROF_N;
    for (int i = 0; i < PROF_N; i++) row[i] = 0;
    for (int i = 1; i < s->n_marks && !st; i++) {
        float ms = 0;
        st = fwd_cuda_event_ms(s->pev, i - 1, i, &ms, e);
        row[s->mark_cat[i]] += ms;
    }
    if (!st) s->prof_n++;
    return st;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The RB_CUDA_PROFILE table on stderr: per stage the median over the profiled tokens. */
static void print_profile(const model_cuda_session *s) {
    const model_hparams *hp = model_get_hparams(s->g->m);
    int n_win = 0;
    for (int il = 0; il < hp->n_layers; il++) n_win += hp->sliding_window[il] != 0;
    const int n_glob = hp->n_layers - n_win;
    float *col = rb_malloc(sizeof(float) * (size_t)s->prof_n), *tot = rb_malloc(sizeof(float) * (size_t)s->prof_n);
    for (int t = 0; t < s->prof_n; t++) {
        tot[t] = 0;
        for (int i = 0; i < PROF_N; i++) tot[t] += s->prof[(size_t)t * PROF_N + i];
    }
    qsort(tot, (size_t)s->prof_n, sizeof(float), cmp_float);
    const double med_tot = 1e3 * tot[s->prof_n / 2];
    fprintf(stderr, "profile: %d decode tokens without graphs, an event after each stage; median "
            "us per token (summed over %d layers):\n", s->prof_n, hp->n_layers);
    for (int i = 0; i < PROF_N; i++) {
        for (int t = 0; t < s->prof_n; t++) col[t] = s->prof[(size_t)t * PROF_N + i];
        qsort(col, (size_t)s->prof_n, sizeof(float), cmp_float);
        double us = 1e3 * col[s->prof_n / 2];
        char per[64] = "";
        if (i == PROF_KVD_WINDOW && n_win) snprintf(per, sizeof per, " (%.1f per layer x %d)", us / n_win, n_win);
        if (i == PROF_KVD_GLOBAL && n_glob) snprintf(per, sizeof per, " (%.1f per layer x %d)", us / n_glob, n_glob);
        fprintf(stderr, "profile  %-20s %8.1f us %5.1f%%%s\n", prof_name[i], us,
                med_tot > 0 ? 100.0 * us / med_tot : 0.0, per);
    }
    fprintf(stderr, "profile  %-20s %8.1f us (median of the per-token sums)\n", "token", med_tot);
    free(col), free(tot);
}

/* Queue one step of a kind: its graph (captured on first use), or the launches themselves
 * when graphs are off. */
static rb_status run(model_cuda_session *s, int kind, rb_err *e) {
    if (s->profile && kind == RUN_DECODE) return run_profiled(s, e);
    fwd_graph **gr = kind == RUN_PREFILL ? &s->gr_prefill : kind == RUN_DECODE ? &s->gr_decode : &s->gr_head;
    if (s->use_graphs && !*gr) {
        rb_err ce = {0};
        rb_status st = fwd_cuda_capture_begin(s->g->c, &ce);
        if (!st) {
            rb_status qs = queue_kind(s, kind, &ce);
            rb_err ee = {0};
            st = fwd_cuda_capture_end(s->g->c, gr, &ee);
            if (qs) st = qs;
            else if (st) ce = ee;
        }
        if (st) {
            /* run without graphs from now on; the launches below are the same */
            s->use_graphs = 0;
            snprintf(s->graph_note, sizeof s->graph_note, "off (capture failed: %s: %s)", ce.what,
                     ce.why);
        }
    }
    if (s->use_graphs && *gr) return fwd_cuda_graph_launch(s->g->c, *gr, e);
    return queue_kind(s, kind, e);
}

const char *model_cuda_session_graphs(const model_cuda_session *s) {
    return s->use_graphs ? "on" : s->graph_note;
}

/* Waits for the queued work and turns a device fault into an error. */
static rb_status finish(model_cuda_session *s, rb_err *e) {
    rb_status st = kvd_sync(s->kc, e);
    if (!st) st = attn_cuda_sync(s->g->c, e);
    return st;
}

static rb_status set_pos(model_cuda_session *s, int pos, rb_err *e) {
    int32_t p = pos;
    return attn_cuda_upload(s->g->c, s->state, &p, sizeof p, e);
}

static rb_status read_out(model_cuda_session *s, float *logits, int *next, rb_err *e) {
    const model_hparams *hp = model_get_hparams(s->g->m);
    rb_status st = RB_OK;
    if (logits)
        st = attn_cuda_download(s->g->c, logits, s->logits, sizeof(float) * (size_t)hp->n_vocab, e);
    if (!st && next) {
        int32_t t;
        st = attn_cuda_download(s->g->c, &t, s->state + 1, sizeof t, e);
        *next = t;
    }
    return st;
}

rb_status model_cuda_session_forward(model_cuda_session *s, int token, int pos, int prefill,
                                     float *logits, int *next, rb_err *e) {
    const model_hparams *hp = model_get_hparams(s->g->m);
    RB_CHECK(token >= 0 && token < hp->n_vocab);
    RB_CHECK(pos >= 0 && pos < s->max_tokens);
    int32_t t = token;
    rb_status st = attn_cuda_upload(s->g->c, s->tokens + pos, &t, sizeof t, e);
    if (!st) st = set_pos(s, pos, e);
    if (!st) st = kvd_reserve(s->kc, 1, e);
    if (!st) st = fwd_cuda_event_record(s->g->c, s->ev, 0, e);
    if (!st) st = run(s, prefill ? RUN_PREFILL : RUN_DECODE, e);
    if (!st && prefill && (logits || next)) st = run(s, RUN_HEAD, e);
    if (!st) st = fwd_cuda_event_record(s->g->c, s->ev, 1, e);
    if (!st) st = finish(s, e);
    float ms = 0;
    if (!st) st = fwd_cuda_event_ms(s->ev, 0, 1, &ms, e);
    s->last_ms = ms;
    if (!st) st = read_out(s, logits, next, e);
    return st;
}

rb_status model_cuda_session_prefill(model_cuda_session *s, const int32_t *ids, int n, int pos0,
                                     float *logits, int *next, rb_err *e) {
    const model_hparams *hp = model_get_hparams(s->g->m);
    RB_CHECK(n >= 1 && pos0 >= 0 && pos0 + n <= s->max_tokens);
    for (int i = 0; i < n; i++) RB_CHECK(ids[i] >= 0 && ids[i] < hp->n_vocab);
    rb_status st = attn_cuda_upload(s->g->c, s->tokens + pos0, ids, sizeof(int32_t) * (size_t)n, e);
    if (!st) st = set_pos(s, pos0, e);
    if (!st) st = kvd_reserve(s->kc, n, e);
    if (!st) st = fwd_cuda_event_record(s->g->c, s->ev, 0, e);
    for (int i = 0; i < n && !st; i++) st = run(s, RUN_PREFILL, e);
    if (!st && (logits || next)) st = run(s, RUN_HEAD, e);
    if (!st) st = fwd_cuda_event_record(s->g->c, s->ev, 1, e);
    if (!st) st = finish(s, e);
    float ms = 0;
    if (!st) st = fwd_cuda_event_ms(s->ev, 0, 1, &ms, e);
    s->last_ms = ms;
    if (!st) st = read_out(s, logits, next, e);
    return st;
}

rb_status model_cuda_session_generate(model_cuda_session *s, int first, int pos0, int n,
                                      const int32_t *stop, int n_stop, int32_t *out, int *n_out,
                                      float *step_ms, rb_err *e) {
    const model_hparams *hp = model_get_hparams(s->g->m);
    RB_CHECK(first >= 0 && first < hp->n_vocab);
    RB_CHECK(n >= 0 && pos0 >= 0 && pos0 + n <= s->max_tokens);
    *n_out = 0;
    int32_t t = first;
    rb_status st = attn_cuda_upload(s->g->c, s->tokens + pos0, &t, sizeof t, e);
    if (!st) st = set_pos(s, pos0, e);
    /* With stop tokens each token is read back before the next step is queued, so the
     * caches end exactly at the stop (a step queued past it could not be taken back). */
    const int batch = n_stop > 0 ? 1 : GEN_BATCH;
    double total_ms = 0;
    for (int i = 0; i < n && !st;) {
        int nb = n - i < batch ? n - i : batch;
        /* pages for this batch only, so the pool grows with what the policies hold */
        st = kvd_reserve(s->kc, nb, e);
        if (!st) st = fwd_cuda_event_record(s->g->c, s->ev, 0, e);
        for (int j = 0; j < nb && !st; j++) {
            st = run(s, RUN_DECODE, e);
            if (!st) st = fwd_cuda_event_record(s->g->c, s->ev, j + 1, e);
        }
        if (!st) st = finish(s, e);
        if (!st)
            st = attn_cuda_download(s->g->c, out + i, s->tokens + pos0 + 1 + i,
                                    sizeof(int32_t) * (size_t)nb, e);
        for (int j = 0; j < nb && !st; j++) {
            float ms = 0;
            st = fwd_cuda_event_ms(s->ev, j, j + 1, &ms, e);
            if (step_ms) step_ms[i + j] = ms;
            total_ms += ms;
        }
        for (int j = 0; j < nb && !st; j++) {
            *n_out = i + j + 1;
            for (int k = 0; k < n_stop; k++)
                if (out[i + j] == stop[k]) {
                    s->last_ms = total_ms;
                    return RB_OK;
                }
        }
        i += nb;
    }
    s->last_ms = total_ms;
    return st;
}

rb_status model_cuda_session_qkv(model_cuda_session *s, int il, float *q, float *k, float *v,
                                 rb_err *e) {
    const model_hparams *hp = model_get_hparams(s->g->m);
    RB_CHECK(il >= 0 && il < hp->n_layers);
    size_t QD = (size_t)hp->n_q_heads * hp->head_dim, KD = (size_t)hp->n_kv_heads * hp->head_dim;
    rb_status st = finish(s, e);
    if (!st && q) st = attn_cuda_download(s->g->c, q, s->q + il * QD, QD * sizeof(float), e);
    if (!st && k) st = attn_cuda_download(s->g->c, k, s->k + il * KD, KD * sizeof(float), e);
    if (!st && v) st = attn_cuda_download(s->g->c, v, s->v + il * KD, KD * sizeof(float), e);
    return st;
}

int64_t model_cuda_session_layer_kv_bytes(model_cuda_session *s, int il) {
    RB_CHECK(il >= 0 && il < model_get_hparams(s->g->m)->n_layers);
    return kvd_layer_kv_bytes(s->kc, il);
}

double model_cuda_session_layer_attended(model_cuda_session *s, int il) {
    const model_hparams *hp = model_get_hparams(s->g->m);
    RB_CHECK(il >= 0 && il < hp->n_layers);
    if (!s->sel) s->sel = rb_malloc(sizeof(int32_t) * (size_t)s->max_tokens);
    double sum = 0;
    for (int h = 0; h < hp->n_q_heads; h++) {
        int n = kvd_selection(s->kc, il, h, s->sel, s->max_tokens);
        sum += n > 0 ? n : 0;
    }
    return sum / hp->n_q_heads;
}

static kvd_stats stats(model_cuda_session *s) {
    kvd_stats x;
    memset(&x, 0, sizeof x);
    if (kvd_stats_get(s->kc, &x, NULL)) memset(&x, 0, sizeof x);
    return x;
}

int64_t model_cuda_session_kv_bytes(model_cuda_session *s) { return stats(s).kv_bytes; }
int64_t model_cuda_session_meta_bytes(model_cuda_session *s) { return stats(s).meta_bytes; }
int64_t model_cuda_session_reserved_bytes(model_cuda_session *s) { return stats(s).reserved_bytes; }
double model_cuda_session_attended(model_cuda_session *s) { return stats(s).attended; }
double model_cuda_session_last_ms(const model_cuda_session *s) { return s->last_ms; }
