/* gguf_writer.h: a tiny GGUF writer for tests (no Python needed): metadata keys, tensors of
 * random valid blocks (quant_random_row) in any supported format, and write_tiny, which
 * writes a small random-weight gemma3, qwen2 or llama model from a tiny_spec. Header-only,
 * static functions; include after testutil.h. (Moved out of test_model_prefill.c so the GPU
 * model test can write its own tiny models.) */
#ifndef GGUF_WRITER_H
#define GGUF_WRITER_H

#include <string.h>

#include "quant.h"
#include "rb.h"

/* ---- a tiny GGUF writer ---------------------------------------------------------------- */

enum { VT_UINT32 = 4, VT_FLOAT32 = 6, VT_STRING = 8 };

typedef struct gw_tensor {
    char name[128];
    int n_dims;
    uint64_t ne[2];
    ggml_type type;
    uint8_t *data;
    size_t nbytes;
} gw_tensor;

typedef struct gguf_writer {
    uint8_t *kv;      /* the metadata section, serialized */
    size_t kv_len, kv_cap;
    int n_kv;
    gw_tensor t[128];
    int n_t;
    uint64_t seed;
} gguf_writer;

static inline void gw_bytes(gguf_writer *w, const void *p, size_t n) {
    if (w->kv_len + n > w->kv_cap) {
        w->kv_cap = (w->kv_len + n) * 2;
        w->kv = rb_realloc(w->kv, w->kv_cap);
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}

static inline void gw_str(gguf_writer *w, const char *s) {
    uint64_t n = strlen(s);
    gw_bytes(w, &n, 8);
    gw_bytes(w, s, n);
}

static inline void gw_key(gguf_writer *w, const char *key, uint32_t type) {
    gw_str(w, key);
    gw_bytes(w, &type, 4);
    w->n_kv++;
}

static inline void gw_u32(gguf_writer *w, const char *key, uint32_t v) {
    gw_key(w, key, VT_UINT32);
    gw_bytes(w, &v, 4);
}

static inline void gw_f32(gguf_writer *w, const char *key, float v) {
    gw_key(w, key, VT_FLOAT32);
    gw_bytes(w, &v, 4);
}

static inline void gw_kstr(gguf_writer *w, const char *key, const char *v) {
    gw_key(w, key, VT_STRING);
    gw_str(w, v);
}

/* A random matrix [rows, cols] (ggml ne = {cols, rows}) or vector (rows = 0) in type t. */
static inline void gw_tensor_add(gguf_writer *w, const char *name, ggml_type t, int64_t rows, int64_t cols) {
    RB_CHECK(w->n_t < 128);
    gw_tensor *x = &w->t[w->n_t++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->n_dims = rows ? 2 : 1;
    x->ne[0] = (uint64_t)cols;
    x->ne[1] = (uint64_t)(rows ? rows : 1);
    x->type = t;
    size_t rb = quant_row_bytes(t, cols);
    x->nbytes = rb * x->ne[1];
    x->data = rb_malloc(x->nbytes);
    for (uint64_t r = 0; r < x->ne[1]; r++) quant_random_row(t, x->data + r * rb, cols, &w->seed);
}

static inline void gw_write(gguf_writer *w, const char *path) {
    FILE *f = fopen(path, "wb");
    RB_CHECK(f != NULL);
    uint32_t version = 3;
    uint64_t n_t = (uint64_t)w->n_t, n_kv = (uint64_t)w->n_kv;
    RB_CHECK(fwrite("GGUF", 1, 4, f) == 4 && fwrite(&version, 4, 1, f) == 1);
    RB_CHECK(fwrite(&n_t, 8, 1, f) == 1 && fwrite(&n_kv, 8, 1, f) == 1);
    RB_CHECK(fwrite(w->kv, 1, w->kv_len, f) == w->kv_len);
    uint64_t off = 0;
    for (int i = 0; i < w->n_t; i++) {
        gw_tensor *x = &w->t[i];
        uint64_t n = strlen(x->name);
        uint32_t nd = (uint32_t)x->n_dims, ty = (uint32_t)x->type;
        RB_CHECK(fwrite(&n, 8, 1, f) == 1 && fwrite(x->name, 1, n, f) == n);
        RB_CHECK(fwrite(&nd, 4, 1, f) == 1 && fwrite(x->ne, 8, nd, f) == nd);
        RB_CHECK(fwrite(&ty, 4, 1, f) == 1 && fwrite(&off, 8, 1, f) == 1);
        off += (x->nbytes + 31) / 32 * 32;
    }
    static const uint8_t zeros[32];
    long pos = ftell(f);
    RB_CHECK(pos >= 0);
    size_t pad = (32 - (size_t)pos % 32) % 32;
    RB_CHECK(fwrite(zeros, 1, pad, f) == pad);
    for (int i = 0; i < w->n_t; i++) {
        gw_tensor *x = &w->t[i];
        size_t p = (x->nbytes + 31) / 32 * 32 - x->nbytes;
        RB_CHECK(fwrite(x->data, 1, x->nbytes, f) == x->nbytes && fwrite(zeros, 1, p, f) == p);
        free(x->data);
    }
    RB_CHECK(fclose(f) == 0);
    free(w->kv);
}

/* ---- the tiny models ------------------------------------------------------------------- */

typedef struct tiny_spec {
    const char *arch;
    int n_embd, n_ff, n_layers, n_head, n_head_kv, head_dim, n_vocab, window;
    /* q, k, v, o, gate, up, down, token_embd, output (-1: tied) */
    ggml_type types[9];
} tiny_spec;

static inline void write_tiny(const tiny_spec *sp, const char *path, uint64_t seed) {
    gguf_writer w = {.seed = seed};
    char key[128];
    const char *a = sp->arch;
    int gemma = !strcmp(a, "gemma3"), qwen = !strcmp(a, "qwen2");
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, a), key)
    gw_kstr(&w, "general.architecture", a);
    gw_kstr(&w, "general.name", "tiny");
    gw_u32(&w, KEY("block_count"), (uint32_t)sp->n_layers);
    gw_u32(&w, KEY("embedding_length"), (uint32_t)sp->n_embd);
    gw_u32(&w, KEY("feed_forward_length"), (uint32_t)sp->n_ff);
    gw_u32(&w, KEY("attention.head_count"), (uint32_t)sp->n_head);
    gw_u32(&w, KEY("attention.head_count_kv"), (uint32_t)sp->n_head_kv);
    gw_u32(&w, KEY("attention.key_length"), (uint32_t)sp->head_dim);
    gw_u32(&w, KEY("attention.value_length"), (uint32_t)sp->head_dim);
    gw_u32(&w, KEY("context_length"), 512);
    gw_f32(&w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
    gw_f32(&w, KEY("rope.freq_base"), 10000.0f);
    if (gemma) {
        gw_u32(&w, KEY("attention.sliding_window"), (uint32_t)sp->window);
        gw_f32(&w, KEY("final_logit_softcapping"), 30.0f);
    }
#undef KEY
    const int E = sp->n_embd, F = sp->n_ff, QD = sp->n_head * sp->head_dim, KD = sp->n_head_kv * sp->head_dim;
    const ggml_type *ty = sp->types;
    gw_tensor_add(&w, "token_embd.weight", ty[7], sp->n_vocab, E);
    if ((int)ty[8] != -1) gw_tensor_add(&w, "output.weight", ty[8], sp->n_vocab, E);
    gw_tensor_add(&w, "output_norm.weight", GGML_T_F32, 0, E);
    for (int il = 0; il < sp->n_layers; il++) {
        char n[96];
#define T(nm, t, rows, cols) (snprintf(n, sizeof n, "blk.%d." nm, il), gw_tensor_add(&w, n, t, rows, cols))
        T("attn_q.weight", ty[0], QD, E);
        T("attn_k.weight", ty[1], KD, E);
        T("attn_v.weight", ty[2], KD, E);
        T("attn_output.weight", ty[3], E, QD);
        T("ffn_gate.weight", ty[4], F, E);
        T("ffn_up.weight", ty[5], F, E);
        T("ffn_down.weight", ty[6], E, F);
        T("attn_norm.weight", GGML_T_F32, 0, E);
        T("ffn_norm.weight", GGML_T_F32, 0, E);
        if (qwen) {
            T("attn_q.bias", GGML_T_F32, 0, QD);
            T("attn_k.bias", GGML_T_F32, 0, KD);
            T("attn_v.bias", GGML_T_F32, 0, KD);
        }
        if (gemma) {
            T("post_attention_norm.weight", GGML_T_F32, 0, E);
            T("post_ffw_norm.weight", GGML_T_F32, 0, E);
            T("attn_q_norm.weight", GGML_T_F32, 0, sp->head_dim);
            T("attn_k_norm.weight", GGML_T_F32, 0, sp->head_dim);
        }
#undef T
    }
    gw_write(&w, path);
}

#endif
