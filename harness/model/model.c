/* model.c: the transformer forward of gemma3, qwen2 and llama GGUF models, one token at a
 * time, written after llama.cpp's graphs (llama-model.cpp) so that its logits are the
 * reference: weights stay in the mmap'd file and go through quant_matvec; the attention of
 * every layer goes through a stepper, so the KV cache is whatever the layer's policy keeps.
 * Prompts run in blocks of tokens (model_session_prefill: the products through
 * quant_matmat), with the same results bit for bit. */
#include "model.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "attn.h"
#include "metrics.h"
#include "model_cuda.h"
#include "stepper.h"

typedef struct layer_weights {
    const gguf_tensor *wq, *wk, *wv, *wo;    /* [n_q_heads*d, n_embd] ... [n_embd, n_q_heads*d] */
    const gguf_tensor *gate, *up, *down;      /* [n_ff, n_embd], [n_ff, n_embd], [n_embd, n_ff] */
    float *attn_norm, *ffn_norm;              /* [n_embd] */
    float *post_attn_norm, *post_ffw_norm;    /* [n_embd], gemma3 only */
    float *q_norm, *k_norm;                   /* [head_dim], gemma3 only */
    float *bq, *bk, *bv;                      /* [n_q_heads*d], [n_kv_heads*d] x2, or NULL */
} layer_weights;

struct model {
    gguf_file *g;
    model_hparams hp;
    layer_weights *layers;       /* [n_layers] */
    const gguf_tensor *tok_embd; /* [n_vocab, n_embd] */
    const gguf_tensor *output;   /* [n_vocab, n_embd]; tok_embd when tied */
    float *output_norm;          /* [n_embd] */
    float *rope_freq_factors;    /* [head_dim/2] or NULL (llama 3 rope_freqs.weight) */
    float rope_pos_scale;        /* linear RoPE scaling: positions times this (1 = none) */
    quant_pool *pool;
    int exact;                   /* matvec through quant_matvec_ref */
    model_cuda *gpu;             /* the weights on the GPU (model_use_device), or NULL */
    /* [n_vocab] 1 for separator tokens (cells_vocab_separators), built by the first session
     * whose policy needs separators (sepllm), under sep_lock: sessions may run in threads */
    pthread_mutex_t sep_lock;
    uint8_t *vocab_sep;
};

/* ---- loading ---- */

/* The metadata key "<arch>.<suffix>" into key[160]; 0 when absent, with *st = RB_EINPUT
 * naming it when required (RB_OK otherwise: the caller takes its default). */
static int meta_key(const gguf_file *g, const char *arch, const char *suffix, int required,
                    char *key, rb_status *st, rb_err *e) {
    snprintf(key, 160, "%s.%s", arch, suffix);
    *st = RB_OK;
    if (gguf_has_key(g, key)) return 1;
    if (required) *st = rb_fail(e, RB_EINPUT, key, "missing from the GGUF metadata");
    return 0;
}

static rb_status meta_int(const gguf_file *g, const char *arch, const char *suffix, int64_t def,
                          int required, int64_t *out, rb_err *e) {
    char key[160];
    rb_status st;
    if (meta_key(g, arch, suffix, required, key, &st, e)) return gguf_get_int(g, key, out, e);
    if (!st) *out = def;
    return st;
}

static rb_status meta_float(const gguf_file *g, const char *arch, const char *suffix,
                            double def, int required, double *out, rb_err *e) {
    char key[160];
    rb_status st;
    if (meta_key(g, arch, suffix, required, key, &st, e)) return gguf_get_float(g, key, out, e);
    if (!st) *out = def;
    return st;
}

/* A weight matrix y = W x with W [rows, cols]: ggml ne[0] = cols, ne[1] = rows. */
static rb_status get_matrix(const gguf_file *g, const char *name, int64_t rows, int64_t cols,
                            int required, const gguf_tensor **out, rb_err *e) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    *out = NULL;
    if (!t) return required ? rb_fail(e, RB_EINPUT, name, "tensor missing from the model") : RB_OK;
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
        return rb_fail(e, RB_EINPUT, name, "shape [%lld, %lld] (ne0, ne1), expected [%lld, %lld]",
                       (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1),
                       (long long)cols, (long long)rows);
    if (!quant_supported(t->type))
        return rb_fail(e, RB_EINPUT, name, "tensor type %s is not supported",
                       ggml_type_name(t->type));
    if (cols % ggml_block_elems(t->type) != 0 ||
        t->nbytes < (size_t)rows * quant_row_bytes(t->type, cols))
        return rb_fail(e, RB_EINPUT, name, "data size does not match its shape and type");
    *out = t;
    return RB_OK;
}

/* RB_OK when v[0..n) holds no NaN or Inf; row >= 0 names a matrix row. */
static rb_status check_finite(const char *name, int64_t row, const float *v, int64_t n,
                              rb_err *e) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            if (row >= 0)
                return rb_fail(e, RB_EINPUT, name, "%s at row %lld, column %lld: the model is "
                               "damaged", isnan(v[i]) ? "NaN" : "Inf", (long long)row,
                               (long long)i);
            return rb_fail(e, RB_EINPUT, name, "%s at element %lld: the model is damaged",
                           isnan(v[i]) ? "NaN" : "Inf", (long long)i);
        }
    return RB_OK;
}

/* A vector (norm weight, bias), converted to float32 once at load. */
static rb_status get_vector(const gguf_file *g, const char *name, int64_t n, int required,
                            float **out, rb_err *e) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    *out = NULL;
    if (!t) return required ? rb_fail(e, RB_EINPUT, name, "tensor missing from the model") : RB_OK;
    int64_t count = 1;
    for (int i = 0; i < t->n_dims; i++) count *= t->ne[i];
    if (t->ne[0] != n || count != n)
        return rb_fail(e, RB_EINPUT, name, "has %lld elements, expected a vector of %lld",
                       (long long)count, (long long)n);
    if (!quant_supported(t->type) || n % ggml_block_elems(t->type) != 0 ||
        t->nbytes < quant_row_bytes(t->type, n))
        return rb_fail(e, RB_EINPUT, name, "tensor type %s is not usable for a vector",
                       ggml_type_name(t->type));
    *out = rb_malloc((size_t)n * sizeof(float));
    quant_dequant_row_ref(t->type, t->data, *out, n);
    return check_finite(name, -1, *out, n, e);
}

/* Every row of the embedding matrix, dequantized one at a time and scanned: a NaN or Inf
 * there would reach every layer of the tokens that use it (the output projection, when
 * tied, too). */
static rb_status check_matrix_finite(const gguf_tensor *t, const char *name, int64_t rows,
                                     int64_t cols, rb_err *e) {
    float *row = rb_malloc((size_t)cols * sizeof(float));
    size_t rb = quant_row_bytes(t->type, cols);
    rb_status st = RB_OK;
    for (int64_t r = 0; r < rows && !st; r++) {
        quant_dequant_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, row, cols);
        /* x * 0 is 0 for every finite x and NaN otherwise: a sum that vectorizes */
        float acc = 0;
        for (int64_t i = 0; i < cols; i++) acc += row[i] * 0.0f;
        if (acc != 0) st = check_finite(name, r, row, cols, e);
    }
    free(row);
    return st;
}

static rb_status load_hparams(model *m, const char *path, rb_err *e) {
    const gguf_file *g = m->g;
    model_hparams *hp = &m->hp;
    gguf_str s;
    rb_status st = gguf_get_str(g, "general.architecture", &s, e);
    if (st) return st;
    if (s.n >= sizeof hp->arch_name) s.n = sizeof hp->arch_name - 1;
    memcpy(hp->arch_name, s.s, s.n);
    hp->arch_name[s.n] = 0;
    if (!strcmp(hp->arch_name, "gemma3")) hp->arch = MODEL_ARCH_GEMMA3;
    else if (!strcmp(hp->arch_name, "qwen2")) hp->arch = MODEL_ARCH_QWEN2;
    else if (!strcmp(hp->arch_name, "llama")) hp->arch = MODEL_ARCH_LLAMA;
    else
        return rb_fail(e, RB_EINPUT, path, "architecture '%s' is not supported (gemma3, qwen2, llama)",
                       hp->arch_name);
    const char *a = hp->arch_name;

    if (gguf_has_key(g, "general.name") && gguf_get_str(g, "general.name", &s, NULL) == RB_OK) {
        size_t n = s.n < sizeof hp->name - 1 ? s.n : sizeof hp->name - 1;
        memcpy(hp->name, s.s, n);
        hp->name[n] = 0;
    } else {
        const char *b = strrchr(path, '/');
        snprintf(hp->name, sizeof hp->name, "%s", b ? b + 1 : path);
    }

    int64_t n_layers, n_embd, n_ff, n_head, n_head_kv, key_len, val_len, n_ctx, swa;
    if ((st = meta_int(g, a, "block_count", 0, 1, &n_layers, e)) ||
        (st = meta_int(g, a, "embedding_length", 0, 1, &n_embd, e)) ||
        (st = meta_int(g, a, "feed_forward_length", 0, 1, &n_ff, e)) ||
        (st = meta_int(g, a, "attention.head_count", 0, 1, &n_head, e)))
        return st;
    if (n_layers < 1 || n_layers > MODEL_MAX_LAYERS || n_embd < 1 || n_embd > (1 << 20) ||
        n_ff < 1 || n_ff > (1 << 22) || n_head < 1 || n_head > 4096)
        return rb_fail(e, RB_EINPUT, path,
                       "hyperparameters out of range (layers %lld, embd %lld, ff %lld, heads %lld)",
                       (long long)n_layers, (long long)n_embd, (long long)n_ff, (long long)n_head);
    if ((st = meta_int(g, a, "attention.head_count_kv", n_head, 0, &n_head_kv, e)) ||
        (st = meta_int(g, a, "attention.key_length", n_embd / n_head, 0, &key_len, e)) ||
        (st = meta_int(g, a, "attention.value_length", key_len, 0, &val_len, e)) ||
        (st = meta_int(g, a, "context_length", 4096, 0, &n_ctx, e)) ||
        (st = meta_int(g, a, "attention.sliding_window", 0, hp->arch == MODEL_ARCH_GEMMA3, &swa, e)))
        return st;
    if (n_head_kv < 1 || n_head % n_head_kv != 0)
        return rb_fail(e, RB_EINPUT, path, "head_count %lld is not a multiple of head_count_kv %lld",
                       (long long)n_head, (long long)n_head_kv);
    if (key_len != val_len || key_len < 2 || key_len % 2 != 0 || key_len > 4096)
        return rb_fail(e, RB_EINPUT, path, "key_length %lld / value_length %lld not supported "
                       "(must be equal and even)", (long long)key_len, (long long)val_len);
    if (swa < 0) return rb_fail(e, RB_EINPUT, path, "negative sliding_window");
    hp->n_layers = (int)n_layers;
    hp->n_embd = (int)n_embd;
    hp->n_ff = (int)n_ff;
    hp->n_q_heads = (int)n_head;
    hp->n_kv_heads = (int)n_head_kv;
    hp->head_dim = (int)key_len;
    hp->n_ctx_train = (int)n_ctx;

    double eps, base, base_swa, scale, softcap;
    if ((st = meta_float(g, a, "attention.layer_norm_rms_epsilon", 0, 1, &eps, e)) ||
        (st = meta_float(g, a, "rope.freq_base", 10000.0, 0, &base, e)) ||
        /* llama.cpp gemma3: local layers use base 10000 unless the file says otherwise */
        (st = meta_float(g, a, "rope.freq_base_swa", 10000.0, 0, &base_swa, e)) ||
        (st = meta_float(g, a, "attention.scale", 0.0, 0, &scale, e)) ||
        (st = meta_float(g, a, "final_logit_softcapping", 0.0, 0, &softcap, e)))
        return st;
    if (!(eps > 0) || !(base > 0) || !(base_swa > 0) || !(scale >= 0) || !(softcap >= 0))
        return rb_fail(e, RB_EINPUT, path, "rms epsilon, rope base or scale out of range");
    hp->rms_eps = (float)eps;
    hp->attn_scale = scale > 0 ? (float)scale : (float)(1.0 / sqrt((double)key_len));
    hp->final_softcap = (float)softcap;
    hp->rope_neox = hp->arch != MODEL_ARCH_LLAMA;
    for (int il = 0; il < hp->n_layers; il++) {
        /* llama.cpp gemma3 (set_swa_pattern(6)): every 6th layer, il % 6 == 5, is global;
         * the other five use the sliding window and the local RoPE base. */
        int local = hp->arch == MODEL_ARCH_GEMMA3 && swa > 0 && il % 6 != 5;
        hp->sliding_window[il] = local ? (int)swa : 0;
        hp->rope_base[il] = (float)(local ? base_swa : base);
    }

    m->rope_pos_scale = 1.0f;
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    if (gguf_has_key(g, key) && gguf_get_str(g, key, &s, NULL) == RB_OK && s.n == 6 &&
        !memcmp(s.s, "linear", 6)) {
        double f;
        if ((st = meta_float(g, a, "rope.scaling.factor", 1.0, 0, &f, e))) return st;
        if (!(f > 0)) return rb_fail(e, RB_EINPUT, path, "rope.scaling.factor must be > 0");
        m->rope_pos_scale = (float)(1.0 / f);
    }

    return RB_OK;
}

static rb_status load_weights(model *m, rb_err *e) {
    const gguf_file *g = m->g;
    model_hparams *hp = &m->hp;
    int64_t E = hp->n_embd, F = hp->n_ff, D = hp->head_dim;
    int64_t QD = (int64_t)hp->n_q_heads * D, KD = (int64_t)hp->n_kv_heads * D;
    int gemma = hp->arch == MODEL_ARCH_GEMMA3;
    rb_status st;

    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    if (!te) return rb_fail(e, RB_EINPUT, "token_embd.weight", "tensor missing from the model");
    if (te->n_dims != 2 || te->ne[1] < 1 || te->ne[1] > (1 << 24))
        return rb_fail(e, RB_EINPUT, "token_embd.weight", "not a [n_vocab, n_embd] matrix");
    hp->n_vocab = (int)te->ne[1];
    if ((st = get_matrix(g, "token_embd.weight", hp->n_vocab, E, 1, &m->tok_embd, e)) ||
        (st = check_matrix_finite(m->tok_embd, "token_embd.weight", hp->n_vocab, E, e)))
        return st;
    if ((st = get_matrix(g, "output.weight", hp->n_vocab, E, 0, &m->output, e))) return st;
    if (!m->output) m->output = m->tok_embd; /* tied output embedding */
    if ((st = get_vector(g, "output_norm.weight", E, 1, &m->output_norm, e))) return st;
    if ((st = get_vector(g, "rope_freqs.weight", D / 2, 0, &m->rope_freq_factors, e))) return st;

    m->layers = rb_calloc((size_t)hp->n_layers, sizeof(layer_weights));
    for (int il = 0; il < hp->n_layers; il++) {
        layer_weights *L = &m->layers[il];
        char n[128];
#define MAT(field, nm, rows, cols)                                                             \
    snprintf(n, sizeof n, "blk.%d." nm ".weight", il);                                         \
    if ((st = get_matrix(g, n, rows, cols, 1, &L->field, e))) return st
#define VEC(field, nm, len, req)                                                               \
    snprintf(n, sizeof n, "blk.%d." nm, il);                                                   \
    if ((st = get_vector(g, n, len, req, &L->field, e))) return st
        MAT(wq, "attn_q", QD, E);
        MAT(wk, "attn_k", KD, E);
        MAT(wv, "attn_v", KD, E);
        MAT(wo, "attn_output", E, QD);
        MAT(gate, "ffn_gate", F, E);
        MAT(up, "ffn_up", F, E);
        MAT(down, "ffn_down", E, F);
        VEC(attn_norm, "attn_norm.weight", E, 1);
        VEC(ffn_norm, "ffn_norm.weight", E, 1);
        VEC(bq, "attn_q.bias", QD, hp->arch == MODEL_ARCH_QWEN2);
        VEC(bk, "attn_k.bias", KD, hp->arch == MODEL_ARCH_QWEN2);
        VEC(bv, "attn_v.bias", KD, hp->arch == MODEL_ARCH_QWEN2);
        if (gemma) {
            VEC(post_attn_norm, "post_attention_norm.weight", E, 1);
            VEC(post_ffw_norm, "post_ffw_norm.weight", E, 1);
            VEC(q_norm, "attn_q_norm.weight", D, 1);
            VEC(k_norm, "attn_k_norm.weight", D, 1);
        }
#undef MAT
#undef VEC
    }
    return RB_OK;
}

rb_status model_load(const char *path, int n_threads, model **out, rb_err *e) {
    *out = NULL;
    model *m = rb_calloc(1, sizeof *m);
    RB_CHECK(pthread_mutex_init(&m->sep_lock, NULL) == 0);
    rb_status st = gguf_open(path, &m->g, e);
    if (!st) st = load_hparams(m, path, e);
    if (!st) st = load_weights(m, e);
    if (st) {
        model_destroy(m);
        return st;
    }
    m->pool = quant_pool_create(n_threads);
    *out = m;
    return RB_OK;
}

void model_destroy(model *m) {
    if (!m) return;
    if (m->layers) {
        for (int il = 0; il < m->hp.n_layers; il++) {
            layer_weights *L = &m->layers[il];
            free(L->attn_norm), free(L->ffn_norm), free(L->post_attn_norm);
            free(L->post_ffw_norm), free(L->q_norm), free(L->k_norm);
            free(L->bq), free(L->bk), free(L->bv);
        }
        free(m->layers);
    }
    free(m->output_norm);
    free(m->rope_freq_factors);
    model_cuda_destroy(m->gpu);
    quant_pool_destroy(m->pool);
    gguf_close(m->g);
    pthread_mutex_destroy(&m->sep_lock);
    free(m->vocab_sep);
    free(m);
}

const model_hparams *model_get_hparams(const model *m) { return &m->hp; }
void model_set_exact(model *m, int exact) { m->exact = exact; }
const gguf_file *model_gguf(const model *m) { return m->g; }
int model_threads(const model *m) { return quant_pool_threads(m->pool); }
float model_rope_pos_scale(const model *m) { return m->rope_pos_scale; }
const float *model_rope_freq_factors(const model *m) { return m->rope_freq_factors; }

static int64_t matrix_bytes(const gguf_tensor *t) {
    return (int64_t)quant_row_bytes(t->type, t->ne[0]) * t->ne[1];
}

int64_t model_weight_bytes_per_token(const model *m) {
    int64_t b = matrix_bytes(m->output);
    for (int il = 0; il < m->hp.n_layers; il++) {
        const layer_weights *L = &m->layers[il];
        b += matrix_bytes(L->wq) + matrix_bytes(L->wk) + matrix_bytes(L->wv) + matrix_bytes(L->wo) +
             matrix_bytes(L->gate) + matrix_bytes(L->up) + matrix_bytes(L->down);
    }
    return b;
}

/* ---- devices ---- */

rb_status model_device_parse(const char *name, model_device *out, rb_err *e) {
    if (name && !strcmp(name, "cpu")) *out = MODEL_DEVICE_CPU;
    else if (name && !strcmp(name, "cuda")) *out = MODEL_DEVICE_CUDA;
    else return rb_fail(e, RB_EINPUT, "--device", "'%s': expected cpu or cuda", name ? name : "");
    return RB_OK;
}

const char *model_device_name(model_device d) { return d == MODEL_DEVICE_CUDA ? "cuda" : "cpu"; }

rb_status model_use_device(model *m, model_device d, rb_err *e) {
    if (d == MODEL_DEVICE_CPU || m->gpu) return RB_OK;
    return model_cuda_load(m, &m->gpu, e);
}

void model_device_describe(const model *m, model_device d, char *buf, size_t n) {
    if (d == MODEL_DEVICE_CUDA && m->gpu) model_cuda_describe(m->gpu, buf, n);
    else snprintf(buf, n, "cpu");
}

/* ---- sessions ---- */

/* The model's separator table, built once (the tokenizer's load, ~0.2 s for Gemma's 262k
 * tokens, is paid only by runs of a policy that needs separators). Ids the tokenizer does
 * not cover (embedding rows past its vocabulary) are no separators. */
static rb_status vocab_separators(const model *cm, const uint8_t **out, rb_err *e) {
    model *m = (model *)cm; /* the lazily built table is the one mutable part, under its lock */
    rb_status st = RB_OK;
    pthread_mutex_lock(&m->sep_lock);
    if (!m->vocab_sep) {
        uint8_t *t;
        int n;
        if (!(st = cells_vocab_separators(m->g, &t, &n, e))) {
            m->vocab_sep = rb_calloc((size_t)m->hp.n_vocab, 1);
            memcpy(m->vocab_sep, t, (size_t)(n < m->hp.n_vocab ? n : m->hp.n_vocab));
            free(t);
        }
    }
    pthread_mutex_unlock(&m->sep_lock);
    *out = m->vocab_sep;
    return st;
}

struct model_session {
    const model *m;
    /* on the GPU: the device session; every call below goes there, and the CPU fields
     * other than m, max_tokens and the q/k/v buffers (filled by model_session_qkv) stay
     * unused */
    model_cuda_session *gpu;
    struct gpu_fault {      /* the first device fault (allocated with gpu; written by the */
        int failed;         /* const-session calls too, hence behind a pointer) */
        rb_err e;
    } *fault;
    stepper **st;          /* [n_layers] */
    const attn_backend *be; /* the attention of every layer and of the measuring */
    int max_tokens;
    float *x, *xn;         /* [n_embd] residual stream, normed copy */
    float *q, *k, *v;      /* [n_layers, n_q_heads*d], [n_layers, n_kv_heads*d] x2 (post-RoPE) */
    float *att;            /* [n_q_heads*d] attention output */
    float *o;              /* [n_embd] */
    float *gate, *up;      /* [n_ff] */
    float *rope_cs;        /* [head_dim] cosines and sines of the current position */
    double rope_cs_pos;    /* what rope_cs was computed for (pos x scale, base) */
    double rope_cs_base;
    model_timing last;
    /* separators (a policy with POLICY_NEEDS_SEPARATORS), else NULL: the model's table, and
     * the mask the policies read, filled as each position's token comes */
    const uint8_t *vocab_sep; /* [n_vocab] */
    uint8_t *sep;             /* [max_tokens] */
    /* measuring (cc->measure): full copies and the last step's metrics */
    int measure;
    float **k_all, **v_all;  /* [n_layers] -> [max_tokens, n_kv_heads*d]; NULL for windowed */
    float *m_logits, *m_probs; /* [n_q_heads, max_tokens] dense logits, probabilities */
    float *m_lse;            /* [n_q_heads] */
    float *m_out;            /* [n_q_heads*d] dense attention output */
    step_metrics m_sc;       /* per-head scores of the last measured layer */
    float *recall, *out_err; /* [n_layers] */
    /* prefill (model_session_prefill): one block of prompt tokens, allocated on first use */
    float *bx, *bxn, *bo;    /* [MODEL_PREFILL_BLOCK, n_embd] */
    float *bq, *batt;        /* [MODEL_PREFILL_BLOCK, n_q_heads*d] */
    float *bk, *bv;          /* [MODEL_PREFILL_BLOCK, n_kv_heads*d] */
    float *bgate, *bup;      /* [MODEL_PREFILL_BLOCK, n_ff] */
};

/* The stepper of layer il under the session's cell. */
static rb_status layer_stepper(const model *m, const model_cache_config *cc, int il,
                               layer_role role, const uint8_t *sep, stepper **out, rb_err *e) {
    const model_hparams *hp = &m->hp;
    layer_policy lp;
    rb_status st = cells_layer_policy(role, cc->cell, hp->sliding_window[il], cc->max_tokens,
                                      &lp, e);
    if (st) return st;
    policy_config cfg = {
        .layer = il, .n_q_heads = hp->n_q_heads, .n_kv_heads = hp->n_kv_heads,
        .head_dim = hp->head_dim, .budget = lp.budget, .page_size = cc->page_size,
        .max_tokens = cc->max_tokens, .attn_scale = hp->attn_scale, .seed = cc->seed,
        .params = &lp.params, .separator = sep, .pools = NULL,
    };
    return stepper_create(lp.ops, &cfg, 2, cc->backend, out, e);
}

rb_status model_session_create(const model *m, const model_cache_config *cc,
                               model_session **out, rb_err *e) {
    const model_hparams *hp = &m->hp;
    *out = NULL;
    if (cc->max_tokens < 1) return rb_fail(e, RB_EINPUT, "max tokens", "must be >= 1");
    model_session *s = rb_calloc(1, sizeof *s);
    s->m = m;
    s->max_tokens = cc->max_tokens;
    if (cc->device == MODEL_DEVICE_CUDA) {
        rb_status st = RB_OK;
        if (!m->gpu)
            st = rb_fail(e, RB_EINPUT, "--device cuda", "the model is not on the device "
                         "(model_use_device first)");
        else if (cc->measure)
            st = rb_fail(e, RB_EINPUT, "--device cuda", "per-step recall and out_err are "
                         "measured on the CPU only (run without --device cuda to measure them)");
        else
            st = model_cuda_session_create(m->gpu, cc, &s->gpu, e);
        if (st) {
            free(s);
            return st;
        }
        s->fault = rb_calloc(1, sizeof *s->fault);
        size_t QD = (size_t)hp->n_q_heads * hp->head_dim, KD = (size_t)hp->n_kv_heads * hp->head_dim;
        s->q = rb_malloc((size_t)hp->n_layers * QD * sizeof(float));
        s->k = rb_malloc((size_t)hp->n_layers * KD * sizeof(float));
        s->v = rb_malloc((size_t)hp->n_layers * KD * sizeof(float));
        *out = s;
        return RB_OK;
    }
    s->be = cc->backend ? cc->backend : attn_backend_default();
    s->st = rb_calloc((size_t)hp->n_layers, sizeof(stepper *));
    rb_status st = RB_OK;
    if (cc->cell && (cc->cell->ops->flags & POLICY_NEEDS_SEPARATORS)) {
        st = vocab_separators(m, &s->vocab_sep, e);
        s->sep = rb_calloc((size_t)cc->max_tokens, 1);
    }
    int uses = 0;
    for (int il = 0; il < hp->n_layers && !st; il++) {
        layer_role role = cells_layer_role(il, hp->sliding_window[il], cc->dense_layers);
        uses |= role == LAYER_POLICY;
        st = layer_stepper(m, cc, il, role, s->sep, &s->st[il], e);
    }
    /* A budget the policy refuses is refused even when no layer runs the policy (all dense
     * or windowed), so a command's meaning does not depend on the model's layer layout. */
    if (!st && !uses) {
        stepper *probe = NULL;
        st = layer_stepper(m, cc, 0, LAYER_POLICY, s->sep, &probe, e);
        stepper_destroy(probe);
    }
    if (st) {
        model_session_destroy(s);
        return st;
    }
    size_t QD = (size_t)hp->n_q_heads * hp->head_dim, KD = (size_t)hp->n_kv_heads * hp->head_dim;
    s->x = rb_malloc((size_t)hp->n_embd * sizeof(float));
    s->xn = rb_malloc((size_t)hp->n_embd * sizeof(float));
    s->o = rb_malloc((size_t)hp->n_embd * sizeof(float));
    s->q = rb_malloc((size_t)hp->n_layers * QD * sizeof(float));
    s->k = rb_malloc((size_t)hp->n_layers * KD * sizeof(float));
    s->v = rb_malloc((size_t)hp->n_layers * KD * sizeof(float));
    s->att = rb_malloc(QD * sizeof(float));
    s->gate = rb_malloc((size_t)hp->n_ff * sizeof(float));
    s->up = rb_malloc((size_t)hp->n_ff * sizeof(float));
    s->rope_cs = rb_malloc((size_t)hp->head_dim * sizeof(float));
    s->rope_cs_pos = -1;
    s->recall = rb_malloc((size_t)hp->n_layers * sizeof(float));
    s->out_err = rb_malloc((size_t)hp->n_layers * sizeof(float));
    for (int il = 0; il < hp->n_layers; il++) s->recall[il] = s->out_err[il] = NAN;
    if (cc->measure) {
        s->measure = 1;
        size_t per = (size_t)cc->max_tokens * KD;
        s->k_all = rb_calloc((size_t)hp->n_layers, sizeof(float *));
        s->v_all = rb_calloc((size_t)hp->n_layers, sizeof(float *));
        for (int il = 0; il < hp->n_layers; il++)
            if (hp->sliding_window[il] == 0) {
                s->k_all[il] = rb_malloc(per * sizeof(float));
                s->v_all[il] = rb_malloc(per * sizeof(float));
            }
        size_t hn = (size_t)hp->n_q_heads * cc->max_tokens;
        s->m_logits = rb_malloc(hn * sizeof(float));
        s->m_probs = rb_malloc(hn * sizeof(float));
        s->m_lse = rb_malloc((size_t)hp->n_q_heads * sizeof(float));
        s->m_out = rb_malloc(QD * sizeof(float));
        s->m_sc.recall = rb_malloc((size_t)hp->n_q_heads * sizeof(double));
        s->m_sc.out_err = rb_malloc((size_t)hp->n_q_heads * sizeof(double));
    }
    *out = s;
    return RB_OK;
}

void model_session_destroy(model_session *s) {
    if (!s) return;
    model_cuda_session_destroy(s->gpu);
    free(s->fault);
    if (s->st)
        for (int il = 0; il < s->m->hp.n_layers; il++) stepper_destroy(s->st[il]);
    free(s->st);
    free(s->x), free(s->xn), free(s->o), free(s->q), free(s->k), free(s->v);
    free(s->att), free(s->gate), free(s->up), free(s->rope_cs);
    if (s->k_all)
        for (int il = 0; il < s->m->hp.n_layers; il++) free(s->k_all[il]), free(s->v_all[il]);
    free(s->recall), free(s->out_err), free(s->k_all), free(s->v_all);
    free(s->m_logits), free(s->m_probs), free(s->m_lse), free(s->m_out);
    free(s->m_sc.recall), free(s->m_sc.out_err);
    free(s->bx), free(s->bxn), free(s->bo), free(s->bq), free(s->batt), free(s->bk), free(s->bv);
    free(s->bgate), free(s->bup);
    free(s->sep);
    free(s);
}

/* y = x / rms(x) * w over n elements, accumulated in double (llama.cpp sums in float; the
 * difference is far below the quantization error of the weights). */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

/* The rotation angles of one position: cs [d/2] cosines then [d/2] sines of
 * theta_i = pos * base^(-2i/d) (divided by the llama 3 frequency factor where present). */
static void rope_table(float *cs, int d, double pos, double base, const float *factors) {
    for (int i = 0; i < d / 2; i++) {
        double theta = pos * pow(base, -2.0 * i / d);
        if (factors) theta /= factors[i];
        cs[i] = (float)cos(theta);
        cs[d / 2 + i] = (float)sin(theta);
    }
}

/* Rotate one head vector x [d]: NEOX pairs (i, i+d/2); NORM pairs (2i, 2i+1). */
static void rope_apply(float *x, int d, const float *cs, int neox) {
    for (int i = 0; i < d / 2; i++) {
        float c = cs[i], sn = cs[d / 2 + i];
        int a = neox ? i : 2 * i, b = neox ? i + d / 2 : 2 * i + 1;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * sn;
        x[b] = x0 * sn + x1 * c;
    }
}

/* The angles of position pos in layer il into s->rope_cs (recomputed only when the position
 * or the base changes: the values are a function of those alone). */
static void rope_at(model_session *s, int il, int pos) {
    const model *m = s->m;
    const model_hparams *hp = &m->hp;
    double rpos = (double)pos * (hp->sliding_window[il] ? 1.0 : m->rope_pos_scale);
    if (rpos != s->rope_cs_pos || hp->rope_base[il] != s->rope_cs_base) {
        rope_table(s->rope_cs, hp->head_dim, rpos, hp->rope_base[il], m->rope_freq_factors);
        s->rope_cs_pos = rpos;
        s->rope_cs_base = hp->rope_base[il];
    }
}

static float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

static void matvec(model_session *s, const gguf_tensor *t, const float *x, float *y) {
    int64_t t0 = rb_now_ns();
    if (s->m->exact) quant_matvec_ref(t->type, t->data, t->ne[1], t->ne[0], x, y);
    else quant_matvec(s->m->pool, t->type, t->data, t->ne[1], t->ne[0], x, y);
    s->last.matvec_ns += rb_now_ns() - t0;
}

/* Y = X W^T for n vectors x [n, cols] -> y [n, rows]: row b bit-identical to matvec of x[b]
 * (quant_matmat's guarantee; the exact path is the same reference call per vector). */
static void matmat(model_session *s, const gguf_tensor *t, const float *x, int n, float *y) {
    int64_t t0 = rb_now_ns(), rows = t->ne[1], cols = t->ne[0];
    if (s->m->exact)
        for (int b = 0; b < n; b++) quant_matvec_ref(t->type, t->data, rows, cols, x + b * cols, y + b * rows);
    else quant_matmat(s->m->pool, t->type, t->data, rows, cols, x, n, y);
    s->last.matvec_ns += rb_now_ns() - t0;
}

/* Score global layer il at decode position pos: the dense reference from the full copies
 * (k_all, v_all hold 0..pos) through the session's backend, then metrics_score_step on the
 * stepper's selection and output (s->att). */
static void measure_layer(model_session *s, int il, int pos) {
    const model_hparams *hp = &s->m->hp;
    const int D = hp->head_dim, Hq = hp->n_q_heads, Hkv = hp->n_kv_heads, n = pos + 1;
    const float *q = s->q + (size_t)il * Hq * D;
    s->be->dense_heads(q, Hq, Hkv, s->k_all[il], s->v_all[il], n, D, Hkv * D, hp->attn_scale,
                       s->m_logits, s->m_lse, s->m_out);
    for (int h = 0; h < Hq; h++) /* logits rows are n apart (dense_heads' layout) */
        attn_exp_shift(s->m_logits + (size_t)h * n, s->m_lse[h], n, s->m_probs + (size_t)h * n);
    metrics_score_step(stepper_selection(s->st[il]), s->att, s->m_probs, n, 0, s->m_out, D,
                       &s->m_sc);
    s->recall[il] = (float)metrics_mean(s->m_sc.recall, Hq);
    s->out_err[il] = (float)metrics_mean(s->m_sc.out_err, Hq);
}

/* One token's projections of layer il made attention-ready: biases, then per head the
 * q/k norm and RoPE at pos. The token path and the block prefill share it, so they stay
 * bit-identical. */
static void qkv_finish(model_session *s, const layer_weights *L, int il, int pos, float *q,
                       float *k, float *v) {
    const model_hparams *hp = &s->m->hp;
    const int D = hp->head_dim, Hq = hp->n_q_heads, Hkv = hp->n_kv_heads;
    const int QD = Hq * D, KD = Hkv * D;
    if (L->bq)
        for (int i = 0; i < QD; i++) q[i] += L->bq[i];
    if (L->bk)
        for (int i = 0; i < KD; i++) k[i] += L->bk[i];
    if (L->bv)
        for (int i = 0; i < KD; i++) v[i] += L->bv[i];
    /* the angles depend on the layer only through its base (local or global) and
     * scaling: recompute when those change, not per head */
    rope_at(s, il, pos);
    for (int h = 0; h < Hq; h++) {
        if (L->q_norm) rmsnorm(q + h * D, q + h * D, L->q_norm, D, hp->rms_eps);
        rope_apply(q + h * D, D, s->rope_cs, hp->rope_neox);
    }
    for (int h = 0; h < Hkv; h++) {
        if (L->k_norm) rmsnorm(k + h * D, k + h * D, L->k_norm, D, hp->rms_eps);
        rope_apply(k + h * D, D, s->rope_cs, hp->rope_neox);
    }
}

/* The next-token logits from the residual stream s->x: the final norm, the output matrix and
 * the final soft cap. The token path and the block prefill share it. */
static void output_head(model_session *s, float *logits) {
    const model *m = s->m;
    const model_hparams *hp = &m->hp;
    rmsnorm(s->xn, s->x, m->output_norm, hp->n_embd, hp->rms_eps);
    matvec(s, m->output, s->xn, logits);
    if (hp->final_softcap > 0)
        for (int i = 0; i < hp->n_vocab; i++)
            logits[i] = tanhf(logits[i] / hp->final_softcap) * hp->final_softcap;
}

/* ---- sessions on the GPU: every call forwards to model_cuda; the first fault sticks ---- */

static void gpu_note(const model_session *s, rb_status st, const rb_err *e) {
    if (st && !s->fault->failed) {
        s->fault->failed = 1;
        s->fault->e = *e;
    }
}

model_device model_session_device(const model_session *s) {
    return s->gpu ? MODEL_DEVICE_CUDA : MODEL_DEVICE_CPU;
}

rb_status model_session_status(const model_session *s, rb_err *e) {
    if (!s->gpu || !s->fault->failed) return RB_OK;
    if (e) *e = s->fault->e;
    return s->fault->e.status ? s->fault->e.status : RB_EINTERNAL;
}

static void gpu_timing(model_session *s) {
    double ms = model_cuda_session_last_ms(s->gpu);
    s->last = (model_timing){.total_ns = (int64_t)(ms * 1e6), .matvec_ns = -1, .attn_ns = -1,
                             .other_ns = -1};
}

static void gpu_forward(model_session *s, int token, int pos, int prefill, float *logits) {
    if (s->fault->failed) return;
    rb_err e = {0};
    gpu_note(s, model_cuda_session_forward(s->gpu, token, pos, prefill, logits, NULL, &e), &e);
    gpu_timing(s);
}

rb_status model_session_generate(model_session *s, int first, int pos0, int n,
                                 const int32_t *stop, int n_stop, int32_t *out, int *n_out,
                                 int64_t *step_ns, rb_err *e) {
    const model_hparams *hp = &s->m->hp;
    RB_CHECK(n >= 0 && pos0 >= 0 && pos0 + n <= s->max_tokens && first >= 0 && first < hp->n_vocab);
    *n_out = 0;
    if (s->gpu) {
        rb_status st = model_session_status(s, e);
        if (st) return st;
        float *ms = step_ns ? rb_malloc(sizeof(float) * (size_t)(n ? n : 1)) : NULL;
        st = model_cuda_session_generate(s->gpu, first, pos0, n, stop, n_stop, out, n_out, ms, e);
        for (int i = 0; ms && i < *n_out; i++) step_ns[i] = (int64_t)((double)ms[i] * 1e6);
        free(ms);
        gpu_note(s, st, e);
        return st;
    }
    float *logits = rb_malloc(sizeof(float) * (size_t)hp->n_vocab);
    int tok = first;
    for (int i = 0; i < n; i++) {
        int64_t t0 = rb_now_ns();
        model_session_forward(s, tok, pos0 + i, 0, logits);
        tok = model_argmax(logits, hp->n_vocab);
        if (step_ns) step_ns[i] = rb_now_ns() - t0;
        out[(*n_out)++] = tok;
        int hit = 0;
        for (int j = 0; j < n_stop; j++) hit |= stop[j] == tok;
        if (hit) break;
    }
    free(logits);
    return RB_OK;
}

void model_session_forward(model_session *s, int token, int pos, int prefill, float *logits) {
    if (s->gpu) {
        RB_CHECK(token >= 0 && token < s->m->hp.n_vocab && pos >= 0 && pos < s->max_tokens);
        gpu_forward(s, token, pos, prefill, logits);
        return;
    }
    const model *m = s->m;
    const model_hparams *hp = &m->hp;
    RB_CHECK(token >= 0 && token < hp->n_vocab);
    RB_CHECK(pos >= 0 && pos < s->max_tokens);
    if (s->sep) s->sep[pos] = s->vocab_sep[token];
    int64_t t_start = rb_now_ns(), t_measure = 0;
    s->last = (model_timing){0};
    const int E = hp->n_embd, D = hp->head_dim, Hq = hp->n_q_heads, Hkv = hp->n_kv_heads;
    const int QD = Hq * D, KD = Hkv * D, gemma = hp->arch == MODEL_ARCH_GEMMA3;

    const gguf_tensor *te = m->tok_embd;
    quant_dequant_row(te->type, (const char *)te->data + (size_t)token * quant_row_bytes(te->type, E),
                      s->x, E);
    if (gemma) {
        /* llama.cpp scales by sqrtf(n_embd) in float */
        float sc = sqrtf((float)E);
        for (int i = 0; i < E; i++) s->x[i] *= sc;
    }

    for (int il = 0; il < hp->n_layers; il++) {
        const layer_weights *L = &m->layers[il];
        float *q = s->q + (size_t)il * QD, *k = s->k + (size_t)il * KD, *v = s->v + (size_t)il * KD;
        rmsnorm(s->xn, s->x, L->attn_norm, E, hp->rms_eps);
        matvec(s, L->wq, s->xn, q);
        matvec(s, L->wk, s->xn, k);
        matvec(s, L->wv, s->xn, v);
        qkv_finish(s, L, il, pos, q, k, v);

        /* A windowed layer attends only its window, prompt included: once a prompt token
         * is past the window, that layer treats it as a decode step (the window policy
         * keeps the last L tokens), as llama.cpp's SWA mask does. */
        int win = hp->sliding_window[il];
        int64_t ta = rb_now_ns();
        if (prefill && (win == 0 || pos < win)) stepper_prefill_token(s->st[il], pos, q, k, v, s->att);
        else stepper_step(s->st[il], pos, q, k, v, NULL, NULL, 0, s->att);
        int64_t tb = rb_now_ns();
        s->last.attn_ns += tb - ta;
        if (s->measure && win == 0) {
            size_t off = (size_t)pos * KD;
            memcpy(s->k_all[il] + off, k, (size_t)KD * sizeof(float));
            memcpy(s->v_all[il] + off, v, (size_t)KD * sizeof(float));
            if (!prefill) measure_layer(s, il, pos);
            t_measure += rb_now_ns() - tb;
        } else if (s->measure && !prefill) {
            s->recall[il] = 1.0f;
            s->out_err[il] = 0.0f;
        }

        matvec(s, L->wo, s->att, s->o);
        if (gemma) rmsnorm(s->o, s->o, L->post_attn_norm, E, hp->rms_eps);
        for (int i = 0; i < E; i++) s->x[i] += s->o[i];

        rmsnorm(s->xn, s->x, L->ffn_norm, E, hp->rms_eps);
        matvec(s, L->gate, s->xn, s->gate);
        matvec(s, L->up, s->xn, s->up);
        for (int i = 0; i < hp->n_ff; i++)
            s->gate[i] = (gemma ? gelu_tanh(s->gate[i]) : silu(s->gate[i])) * s->up[i];
        matvec(s, L->down, s->gate, s->o);
        if (gemma) rmsnorm(s->o, s->o, L->post_ffw_norm, E, hp->rms_eps);
        for (int i = 0; i < E; i++) s->x[i] += s->o[i];
    }

    if (logits) output_head(s, logits);
    s->last.total_ns = rb_now_ns() - t_start - t_measure;
    s->last.other_ns = s->last.total_ns - s->last.matvec_ns - s->last.attn_ns;
}

/* n <= MODEL_PREFILL_BLOCK prompt tokens at positions pos0.. through every layer: what n
 * calls of model_session_forward(prefill=1, logits NULL) compute, in the same arithmetic.
 * Per layer, the matrix products run over the block (quant_matmat: row b equals the matvec
 * of token b bit for bit), norms, RoPE and activations per token with the same code, and
 * attention per token in position order through the layer's stepper, exactly as the
 * token-by-token path calls it. A stepper sees only its own layer, so running a layer's
 * tokens before the next layer's changes nothing it sees. cap (or NULL) receives each
 * token's post-RoPE q, k, v at row cap_i0 + i. Leaves the last token's residual in s->x
 * and its q, k, v in s->q, s->k, s->v (model_session_qkv). */
static void prefill_block(model_session *s, const int32_t *ids, int n, int pos0,
                          model_prompt *cap, int cap_i0, int64_t *t_measure) {
    const model *m = s->m;
    const model_hparams *hp = &m->hp;
    const int E = hp->n_embd, D = hp->head_dim, Hq = hp->n_q_heads, Hkv = hp->n_kv_heads;
    const int QD = Hq * D, KD = Hkv * D, F = hp->n_ff, gemma = hp->arch == MODEL_ARCH_GEMMA3;
    const gguf_tensor *te = m->tok_embd;
    for (int i = 0; i < n; i++) {
        RB_CHECK(ids[i] >= 0 && ids[i] < hp->n_vocab);
        float *x = s->bx + (size_t)i * E;
        quant_dequant_row(te->type, (const char *)te->data + (size_t)ids[i] * quant_row_bytes(te->type, E), x, E);
        if (gemma) {
            float sc = sqrtf((float)E);
            for (int c = 0; c < E; c++) x[c] *= sc;
        }
    }

    for (int il = 0; il < hp->n_layers; il++) {
        const layer_weights *L = &m->layers[il];
        for (int i = 0; i < n; i++)
            rmsnorm(s->bxn + (size_t)i * E, s->bx + (size_t)i * E, L->attn_norm, E, hp->rms_eps);
        matmat(s, L->wq, s->bxn, n, s->bq);
        matmat(s, L->wk, s->bxn, n, s->bk);
        matmat(s, L->wv, s->bxn, n, s->bv);
        int win = hp->sliding_window[il];
        for (int i = 0; i < n; i++) {
            int pos = pos0 + i;
            float *q = s->bq + (size_t)i * QD, *k = s->bk + (size_t)i * KD, *v = s->bv + (size_t)i * KD;
            qkv_finish(s, L, il, pos, q, k, v);
            float *att = s->batt + (size_t)i * QD;
            int64_t ta = rb_now_ns();
            if (win == 0 || pos < win) stepper_prefill_token(s->st[il], pos, q, k, v, att);
            else stepper_step(s->st[il], pos, q, k, v, NULL, NULL, 0, att);
            int64_t tb = rb_now_ns();
            s->last.attn_ns += tb - ta;
            if (s->measure && win == 0) {
                size_t off = (size_t)pos * KD;
                memcpy(s->k_all[il] + off, k, (size_t)KD * sizeof(float));
                memcpy(s->v_all[il] + off, v, (size_t)KD * sizeof(float));
                *t_measure += rb_now_ns() - tb;
            }
            if (cap) {
                size_t row = (size_t)il * cap->n + cap_i0 + i;
                memcpy(cap->q + row * cap->qd, q, sizeof(float) * QD);
                memcpy(cap->k + row * cap->kd, k, sizeof(float) * KD);
                memcpy(cap->v + row * cap->kd, v, sizeof(float) * KD);
            }
        }
        size_t last = (size_t)(n - 1);
        memcpy(s->q + (size_t)il * QD, s->bq + last * QD, sizeof(float) * QD);
        memcpy(s->k + (size_t)il * KD, s->bk + last * KD, sizeof(float) * KD);
        memcpy(s->v + (size_t)il * KD, s->bv + last * KD, sizeof(float) * KD);

        matmat(s, L->wo, s->batt, n, s->bo);
        for (int i = 0; i < n; i++) {
            float *o = s->bo + (size_t)i * E, *x = s->bx + (size_t)i * E;
            if (gemma) rmsnorm(o, o, L->post_attn_norm, E, hp->rms_eps);
            for (int c = 0; c < E; c++) x[c] += o[c];
            rmsnorm(s->bxn + (size_t)i * E, x, L->ffn_norm, E, hp->rms_eps);
        }
        matmat(s, L->gate, s->bxn, n, s->bgate);
        matmat(s, L->up, s->bxn, n, s->bup);
        for (size_t c = 0; c < (size_t)n * F; c++)
            s->bgate[c] = (gemma ? gelu_tanh(s->bgate[c]) : silu(s->bgate[c])) * s->bup[c];
        matmat(s, L->down, s->bgate, n, s->bo);
        for (int i = 0; i < n; i++) {
            float *o = s->bo + (size_t)i * E, *x = s->bx + (size_t)i * E;
            if (gemma) rmsnorm(o, o, L->post_ffw_norm, E, hp->rms_eps);
            for (int c = 0; c < E; c++) x[c] += o[c];
        }
    }
    memcpy(s->x, s->bx + (size_t)(n - 1) * E, sizeof(float) * E);
}

/* model_session_prefill with the capture of every token's q, k, v (cap: NULL or sized for
 * positions pos0 .. pos0 + n - 1 at rows 0 .. n - 1). */
static void prefill(model_session *s, const int32_t *ids, int n, int pos0, float *logits,
                    model_prompt *cap) {
    const model *m = s->m;
    const model_hparams *hp = &m->hp;
    RB_CHECK(n >= 1 && pos0 >= 0 && pos0 + n <= s->max_tokens);
    if (s->sep)
        for (int i = 0; i < n; i++) {
            RB_CHECK(ids[i] >= 0 && ids[i] < hp->n_vocab);
            s->sep[pos0 + i] = s->vocab_sep[ids[i]];
        }
    int64_t t_start = rb_now_ns(), t_measure = 0;
    s->last = (model_timing){0};
    if (!s->bx) {
        size_t B = MODEL_PREFILL_BLOCK, E = (size_t)hp->n_embd, F = (size_t)hp->n_ff;
        size_t QD = (size_t)hp->n_q_heads * hp->head_dim, KD = (size_t)hp->n_kv_heads * hp->head_dim;
        s->bx = rb_malloc(B * E * sizeof(float));
        s->bxn = rb_malloc(B * E * sizeof(float));
        s->bo = rb_malloc(B * E * sizeof(float));
        s->bq = rb_malloc(B * QD * sizeof(float));
        s->batt = rb_malloc(B * QD * sizeof(float));
        s->bk = rb_malloc(B * KD * sizeof(float));
        s->bv = rb_malloc(B * KD * sizeof(float));
        s->bgate = rb_malloc(B * F * sizeof(float));
        s->bup = rb_malloc(B * F * sizeof(float));
    }
    for (int i0 = 0; i0 < n; i0 += MODEL_PREFILL_BLOCK) {
        int nb = n - i0 < MODEL_PREFILL_BLOCK ? n - i0 : MODEL_PREFILL_BLOCK;
        prefill_block(s, ids + i0, nb, pos0 + i0, cap, i0, &t_measure);
    }
    if (logits) output_head(s, logits);
    s->last.total_ns = rb_now_ns() - t_start - t_measure;
    s->last.other_ns = s->last.total_ns - s->last.matvec_ns - s->last.attn_ns;
}

void model_session_prefill(model_session *s, const int32_t *ids, int n, int pos0, float *logits) {
    if (s->gpu) {
        RB_CHECK(n >= 1 && pos0 >= 0 && pos0 + n <= s->max_tokens);
        for (int i = 0; i < n; i++) RB_CHECK(ids[i] >= 0 && ids[i] < s->m->hp.n_vocab);
        if (s->fault->failed) return;
        rb_err e = {0};
        gpu_note(s, model_cuda_session_prefill(s->gpu, ids, n, pos0, logits, NULL, &e), &e);
        gpu_timing(s);
        return;
    }
    prefill(s, ids, n, pos0, logits, NULL);
}

void model_session_qkv(const model_session *s, int il, const float **q, const float **k,
                       const float **v) {
    if (s->gpu) {
        const model_hparams *hp = &s->m->hp;
        RB_CHECK(il >= 0 && il < hp->n_layers);
        size_t QD = (size_t)hp->n_q_heads * hp->head_dim, KD = (size_t)hp->n_kv_heads * hp->head_dim;
        float *hq = s->q + il * QD, *hk = s->k + il * KD, *hv = s->v + il * KD;
        rb_err e = {0};
        if (!s->fault->failed) gpu_note(s, model_cuda_session_qkv(s->gpu, il, hq, hk, hv, &e), &e);
        *q = hq, *k = hk, *v = hv;
        return;
    }
    const model_hparams *hp = &s->m->hp;
    RB_CHECK(il >= 0 && il < hp->n_layers);
    size_t QD = (size_t)hp->n_q_heads * hp->head_dim, KD = (size_t)hp->n_kv_heads * hp->head_dim;
    *q = s->q + il * QD;
    *k = s->k + il * KD;
    *v = s->v + il * KD;
}

model_timing model_session_last_timing(const model_session *s) { return s->last; }

int64_t model_session_layer_kv_bytes(const model_session *s, int il) {
    RB_CHECK(il >= 0 && il < s->m->hp.n_layers);
    if (s->gpu) return model_cuda_session_layer_kv_bytes(s->gpu, il);
    return stepper_kv_bytes(s->st[il]);
}

rb_status model_prompt_capture(const model *m, const int32_t *ids, int n, model_prompt *out,
                               rb_err *e) {
    const model_hparams *hp = &m->hp;
    memset(out, 0, sizeof *out);
    policy_params dp;
    cell dense;
    const policy_ops *ops = policy_find("dense", e);
    if (!ops) return RB_EINTERNAL;
    rb_status st = policy_params_for(ops, NULL, 0, &dp, e);
    if (st || (st = cells_init(&dense, ops, &dp, 0, NULL, NULL, e))) return st;
    model_cache_config cc = {.cell = &dense, .page_size = 16, .max_tokens = n + 1};
    model_session *s;
    st = model_session_create(m, &cc, &s, e);
    free(dense.params_json);
    if (st) return st;
    out->n = n, out->n_layers = hp->n_layers;
    out->qd = hp->n_q_heads * hp->head_dim, out->kd = hp->n_kv_heads * hp->head_dim;
    size_t nl = (size_t)hp->n_layers * n;
    out->q = rb_malloc(sizeof(float) * nl * out->qd);
    out->k = rb_malloc(sizeof(float) * nl * out->kd);
    out->v = rb_malloc(sizeof(float) * nl * out->kd);
    out->logits = rb_malloc(sizeof(float) * (size_t)hp->n_vocab);
    out->ids = rb_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (n > 0) memcpy(out->ids, ids, sizeof(int32_t) * (size_t)n);
    if (n >= 1) prefill(s, ids, n, 0, out->logits, out);
    model_session_destroy(s);
    return RB_OK;
}

void model_prompt_free(model_prompt *p) {
    free(p->q), free(p->k), free(p->v), free(p->logits), free(p->ids);
    memset(p, 0, sizeof *p);
}

void model_session_load_prompt(model_session *s, const model_prompt *p) {
    const model_hparams *hp = &s->m->hp;
    RB_CHECK(p->n_layers == hp->n_layers && p->n >= 1 && p->n < s->max_tokens && !s->measure &&
             !s->gpu);
    if (s->sep)
        for (int i = 0; i < p->n; i++) s->sep[i] = s->vocab_sep[p->ids[i]];
    float *scratch = rb_malloc(sizeof(float) * (size_t)p->qd);
    for (int il = 0; il < hp->n_layers; il++) {
        const float *q = p->q + (size_t)il * p->n * p->qd, *k = p->k + (size_t)il * p->n * p->kd;
        const float *v = p->v + (size_t)il * p->n * p->kd;
        int win = hp->sliding_window[il];
        if (win == 0 || p->n <= win) {
            /* the whole prompt as one batch: the policy sees what a token-by-token prefill
             * hands it (stepper_prefill_token buffers and flushes the same rows) */
            stepper_prefill(s->st[il], p->n, q, k, v, NULL);
            continue;
        }
        /* a windowed layer past its window treats later prompt tokens as steps of the window
         * policy, as model_session_forward does */
        for (int i = 0; i < p->n; i++) {
            const float *qi = q + (size_t)i * p->qd, *ki = k + (size_t)i * p->kd;
            const float *vi = v + (size_t)i * p->kd;
            if (i < win) stepper_prefill_token(s->st[il], i, qi, ki, vi, scratch);
            else stepper_step(s->st[il], i, qi, ki, vi, NULL, NULL, 0, scratch);
        }
    }
    free(scratch);
}

int64_t model_session_kv_bytes(const model_session *s) {
    if (s->gpu) return model_cuda_session_kv_bytes(s->gpu);
    int64_t b = 0;
    for (int il = 0; il < s->m->hp.n_layers; il++) b += stepper_kv_bytes(s->st[il]);
    return b;
}

int64_t model_session_meta_bytes(const model_session *s) {
    if (s->gpu) return model_cuda_session_meta_bytes(s->gpu);
    int64_t b = 0;
    for (int il = 0; il < s->m->hp.n_layers; il++) b += stepper_meta_bytes(s->st[il]);
    return b;
}

void model_session_metrics(const model_session *s, int il, float *recall, float *out_err,
                           float *attended) {
    RB_CHECK(il >= 0 && il < s->m->hp.n_layers);
    if (s->gpu) { /* no dense reference on the device: recall and out_err are not measured */
        *recall = *out_err = NAN;
        *attended = (float)model_cuda_session_layer_attended(s->gpu, il);
        return;
    }
    *recall = s->recall[il];
    *out_err = s->out_err[il];
    *attended = (float)metrics_attended(stepper_selection(s->st[il]));
}

/* ---- sampling ---- */

int model_argmax(const float *logits, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int model_sample(const float *logits, int n, double temperature, double u) {
    if (!(temperature > 0)) return model_argmax(logits, n);
    float mx = logits[model_argmax(logits, n)];
    double z = 0;
    for (int i = 0; i < n; i++) z += exp((logits[i] - mx) / temperature);
    double target = u * z, c = 0;
    for (int i = 0; i < n; i++) {
        c += exp((logits[i] - mx) / temperature);
        if (c > target) return i;
    }
    return model_argmax(logits, n); /* u rounding at the very top */
}

double model_kl(const float *a, const float *b, int n) {
    double ma = a[model_argmax(a, n)], mb = b[model_argmax(b, n)];
    double za = 0, zb = 0;
    for (int i = 0; i < n; i++) {
        za += exp(a[i] - ma);
        zb += exp(b[i] - mb);
    }
    double lza = log(za) + ma, lzb = log(zb) + mb, kl = 0;
    for (int i = 0; i < n; i++) {
        double la = a[i] - lza, lb = b[i] - lzb;
        kl += exp(la) * (la - lb);
    }
    return kl > 0 ? kl : 0; /* rounding can give -1e-17 for equal inputs */
}
