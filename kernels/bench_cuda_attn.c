/* bench_cuda_attn.c: device time of one decode step of GPU attention (kernels/cuda) at long
 * contexts, against the peer figures of torch SDPA on an H200 (the anchors below) and
 * against the device copy bandwidth measured in the same run.
 *
 * Shape: Hq = 32, Hkv = 8, d = 128 (what the anchors' byte counts imply: their dense_GBps *
 * dense_ms / N = 4096 bytes per token = K and V of 8 heads x 128 dims x 2 bytes, i.e. a
 * 2-byte dtype; the anchor file names no dtype and no head counts). Per N: dense over all N
 * tokens; sparse gather of L = 1024 and 2048 tokens per KV head (Quest-like: L/16 random
 * pages of 16 consecutive tokens, sorted); and, once, dense over a compact resident cache of
 * L tokens (RaaS / H2O / StreamingLLM keep only L). float32 K/V (what raasbench stores) and
 * half K/V (like for like with the anchors).
 *
 * Timing: a spin kernel holds the stream while the host queues `reps` calls, each between
 * two events, so calls run back to back as in a decode loop; the median of the per-call
 * event intervals is reported (after 3 warm-up calls). Inputs rotate over enough copies
 * (>= 512 MiB, over 8x the L2) that no call finds its K/V in the L2 cache. GB/s counts the
 * bytes a step must move: K and V rows read, q read, o and lse written (and indices). Exit 77
 * when there is no GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cuda/attn_cuda.h"
#include "rb.h"

/* Peer figures (a torch decode-step benchmark supplied with the project): torch 2.11.0+cu130
 * SDPA on an NVIDIA H200,
 * copy_GBps 4203.2 (the resident cache size L of resident_L_ms is not stated). */
static const struct anchor {
    int n;
    double dense_ms, quest_torch_ms, resident_L_ms, dense_floor_ms;
} anchors[] = {
    {4096, 0.03152000159025192, 0.16873599588871002, 0.028896000236272812, 0.00399150000885129},
    {16384, 0.039264000952243805, 0.16252799332141876, 0.02844800055027008, 0.01596600003540516},
    {32768, 0.05379199981689453, 0.17004799842834473, 0.028416000306606293, 0.03193200007081032},
    {65536, 0.08403199911117554, 0.22643199563026428, 0.029184000566601753, 0.06386400014162064},
    {131072, 0.14287999272346497, 0.3802880048751831, 0.029120000079274178, 0.12772800028324127},
};
static const double anchor_copy_GBps = 4203.235866916182;
enum { HQ = 32, HKV = 8, D = 128, N_SETS = 16, PAGE = 16 };
static const size_t ROT_BYTES = (size_t)512 << 20;

static attn_cuda *ctx;

#define TRY(call)                                                                              \
    do {                                                                                       \
        if ((call) != RB_OK) return rb_err_print(&e);                                          \
    } while (0)

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* One timed call: rep r picks its rotated inputs. */
typedef struct step {
    attn_cuda_shape s;
    int n, L, n_copies, n_sets;
    size_t kv_elems; /* elements of one copy of K (or V) */
    char *k, *v;     /* [n_copies][n, Hkv, d] */
    int32_t *idx;    /* [n_sets][Hkv, L] or NULL */
    float *q, *o, *lse;
    char *copy_dst, *copy_src; /* for the copy "step" */
    size_t copy_bytes;
} step;

static rb_status step_run(step *st, int r, rb_err *e) {
    if (st->copy_bytes) return attn_cuda_copy(ctx, st->copy_dst, st->copy_src, st->copy_bytes, e);
    size_t elt = st->s.kv_dtype == ATTN_CUDA_F16 ? 2 : 4;
    size_t off = (size_t)(r % st->n_copies) * st->kv_elems * elt;
    if (st->idx)
        return attn_cuda_gather(ctx, &st->s, st->q, st->k + off, st->v + off, st->n,
                                st->idx + (size_t)(r % st->n_sets) * HKV * st->L, st->L, st->o,
                                st->lse, e);
    return attn_cuda_dense(ctx, &st->s, st->q, st->k + off, st->v + off, st->n, st->o, st->lse, e);
}

/* Median device ms per call over `reps` calls queued back to back. */
static rb_status step_time(step *st, int reps, double *ms, rb_err *e) {
    for (int r = 0; r < 3; r++)
        if (step_run(st, r, e)) return e->status;
    if (attn_cuda_sync(ctx, e)) return e->status;
    if (attn_cuda_spin(ctx, 2000 + 40 * reps, e)) return e->status;
    if (attn_cuda_mark(ctx, 0, e)) return e->status;
    for (int r = 0; r < reps; r++) {
        if (step_run(st, r, e)) return e->status;
        if (attn_cuda_mark(ctx, r + 1, e)) return e->status;
    }
    float *t = rb_malloc(sizeof(float) * reps);
    for (int r = 0; r < reps; r++)
        if (attn_cuda_elapsed_ms(ctx, r, r + 1, &t[r], e)) return free(t), e->status;
    if (attn_cuda_sync(ctx, e)) return free(t), e->status;
    qsort(t, (size_t)reps, sizeof t[0], cmp_float);
    *ms = t[reps / 2];
    free(t);
    return RB_OK;
}

/* K/V copies for n tokens, filled with hash-random values. */
static rb_status kv_make(step *st, attn_cuda_dtype dt, int n, rb_err *e) {
    size_t elt = dt == ATTN_CUDA_F16 ? 2 : 4;
    st->n = n;
    st->kv_elems = (size_t)n * HKV * D;
    size_t one = 2 * st->kv_elems * elt;
    st->n_copies = (int)((ROT_BYTES + one - 1) / one);
    if (st->n_copies < 2) st->n_copies = 2;
    size_t all = (size_t)st->n_copies * st->kv_elems;
    void *k, *v;
    if (attn_cuda_alloc(ctx, all * elt, &k, e) || attn_cuda_alloc(ctx, all * elt, &v, e)) return e->status;
    st->k = k, st->v = v;
    if (attn_cuda_fill_random(ctx, k, all, dt, 1, e) || attn_cuda_fill_random(ctx, v, all, dt, 2, e))
        return e->status;
    return attn_cuda_sync(ctx, e);
}

static void kv_free(step *st) {
    attn_cuda_free(ctx, st->k), attn_cuda_free(ctx, st->v);
    st->k = st->v = NULL;
}

/* N_SETS index sets: per KV head, L/PAGE distinct random pages, sorted. */
static rb_status idx_make(step *st, int L, rb_err *e) {
    int n_pages = st->n / PAGE, want = L / PAGE;
    int *pages = rb_malloc(sizeof(int) * n_pages);
    int32_t *h = rb_malloc(sizeof(int32_t) * N_SETS * HKV * L);
    uint64_t x = 0x853c49e6748fea9bull;
    for (int s = 0; s < N_SETS * HKV; s++) {
        for (int i = 0; i < n_pages; i++) pages[i] = i;
        for (int i = 0; i < want; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            int j = i + (int)((x >> 33) % (uint64_t)(n_pages - i));
            int t = pages[i];
            pages[i] = pages[j], pages[j] = t;
        }
        /* sort the chosen pages (insertion sort: want <= 128) */
        for (int i = 1; i < want; i++)
            for (int j = i; j > 0 && pages[j - 1] > pages[j]; j--) {
                int t = pages[j];
                pages[j] = pages[j - 1], pages[j - 1] = t;
            }
        for (int i = 0; i < L; i++) h[(size_t)s * L + i] = pages[i / PAGE] * PAGE + i % PAGE;
    }
    void *d;
    rb_status rc = attn_cuda_alloc(ctx, sizeof(int32_t) * N_SETS * HKV * L, &d, e);
    if (!rc) rc = attn_cuda_upload(ctx, d, h, sizeof(int32_t) * N_SETS * HKV * L, e);
    free(pages), free(h);
    st->idx = d, st->L = L, st->n_sets = N_SETS;
    return rc;
}

static double step_bytes(const step *st, attn_cuda_dtype dt) {
    double elt = dt == ATTN_CUDA_F16 ? 2 : 4, rows = st->idx ? (double)st->L : (double)st->n;
    return 2 * rows * HKV * D * elt + (st->idx ? rows * HKV * 4 : 0) + (2.0 * HQ * D + HQ) * 4;
}

int main(int argc, char **argv) {
    int reps = 200;
    const char *ns_arg = "4096,16384,32768,65536,131072", *bps_arg = "2,3,4,6,8";
    arg_spec specs[] = {
        {"reps", ARG_INT, &reps, "N", "timed calls per case (median; 10..1000, default 200)"},
        {"ns", ARG_STR, &ns_arg, "LIST", "context lengths (default 4096,...,131072)"},
        {"bps", ARG_STR, &bps_arg, "LIST", "blocks-per-SM settings of the tuning sweep (at 16384 and the largest N)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    rb_err e = {0};
    int help = 0, n_pos = 0;
    if (args_parse("bench_cuda_attn", "[options]", specs, argc - 1, argv + 1, NULL, 0, &n_pos, &help, &e))
        return rb_err_print(&e);
    if (help) return 0;
    int ns[16], n_ns = 0, bps[16], n_bps = 0;
    TRY(args_int_list("--ns", ns_arg, ns, 16, &n_ns, &e));
    TRY(args_int_list("--bps", bps_arg, bps, 16, &n_bps, &e));
    if (reps < 10 || reps > ATTN_CUDA_MAX_MARKS - 1)
        return rb_fail(&e, RB_EINPUT, "--reps", "%d outside 10..%d", reps, ATTN_CUDA_MAX_MARKS - 1),
               rb_err_print(&e);
    for (int i = 0; i < n_ns; i++)
        if (ns[i] < 2048 || ns[i] % PAGE || ns[i] > (1 << 22))
            return rb_fail(&e, RB_EINPUT, "--ns", "%d: need a multiple of %d in 2048..4194304", ns[i], PAGE),
                   rb_err_print(&e);
    for (int i = 0; i < n_bps; i++)
        if (bps[i] < 1 || bps[i] > 64) return rb_fail(&e, RB_EINPUT, "--bps", "%d outside 1..64", bps[i]), rb_err_print(&e);
    if (attn_cuda_device_count() == 0) {
        attn_cuda *c = NULL;
        attn_cuda_create(&c, &e);
        printf("skip: %s\n", e.why);
        return 77;
    }
    TRY(attn_cuda_create(&ctx, &e));
    char desc[300];
    attn_cuda_describe(ctx, desc, sizeof desc);
    attn_cuda_tuning def = attn_cuda_tuning_default();
    printf("# device: %s; shape Hq=%d Hkv=%d d=%d; median of %d calls; tuning: %d blocks/SM, "
           "prefetch %d (-1: half only), heads_inner %d\n", desc, HQ, HKV, D, reps, def.blocks_per_sm,
           def.prefetch, def.heads_inner);

    /* Copy bandwidth: 1 GiB device-to-device, bytes read + written. */
    step cp = {0};
    cp.copy_bytes = (size_t)1 << 30;
    void *a, *b;
    TRY(attn_cuda_alloc(ctx, cp.copy_bytes, &a, &e));
    TRY(attn_cuda_alloc(ctx, cp.copy_bytes, &b, &e));
    TRY(attn_cuda_fill_random(ctx, b, cp.copy_bytes / 4, ATTN_CUDA_F32, 3, &e));
    cp.copy_dst = a, cp.copy_src = b;
    double copy_ms;
    TRY(step_time(&cp, reps < 50 ? reps : 50, &copy_ms, &e));
    double copy_GBps = 2.0 * (double)cp.copy_bytes / copy_ms / 1e6;
    attn_cuda_free(ctx, a), attn_cuda_free(ctx, b);
    printf("# copy bandwidth: %.0f GB/s (1 GiB device-to-device, read + write; anchor run: %.0f)\n",
           copy_GBps, anchor_copy_GBps);

    for (int dt = 0; dt < 2; dt++) {
        attn_cuda_dtype t = dt ? ATTN_CUDA_F16 : ATTN_CUDA_F32;
        const char *tn = dt ? "f16" : "f32";
        attn_cuda_shape s = {HQ, HKV, D, (float)(1 / sqrt((double)D)), t};
        void *q, *o, *lse;
        TRY(attn_cuda_alloc(ctx, sizeof(float) * HQ * D, &q, &e));
        TRY(attn_cuda_alloc(ctx, sizeof(float) * HQ * D, &o, &e));
        TRY(attn_cuda_alloc(ctx, sizeof(float) * HQ, &lse, &e));
        TRY(attn_cuda_fill_random(ctx, q, HQ * D, ATTN_CUDA_F32, 4, &e));
        printf("\n## K/V %s (anchors: torch SDPA, 2-byte K/V; ratio = ours / anchor, < 1 is faster)\n", tn);
        printf("%-7s | %9s %7s %6s %9s %6s | %9s %9s %7s %9s %6s\n", "N", "dense_ms", "GB/s", "%copy",
               "anchor", "ratio", "g1024_ms", "g2048_ms", "GB/s", "quest_anc", "ratio");
        for (int i = 0; i < n_ns; i++) {
            step st = {0};
            st.s = s, st.q = q, st.o = o, st.lse = lse;
            TRY(kv_make(&st, t, ns[i], &e));
            double dense_ms, g_ms[2], g_bytes = 0;
            TRY(step_time(&st, reps, &dense_ms, &e));
            double dense_bytes = step_bytes(&st, t);
            for (int j = 0; j < 2; j++) {
                TRY(idx_make(&st, 1024 << j, &e));
                TRY(step_time(&st, reps, &g_ms[j], &e));
                if (j == 0) g_bytes = step_bytes(&st, t);
                attn_cuda_free(ctx, st.idx);
                st.idx = NULL;
            }
            kv_free(&st);
            const struct anchor *an = NULL;
            for (size_t k = 0; k < sizeof anchors / sizeof anchors[0]; k++)
                if (anchors[k].n == ns[i]) an = &anchors[k];
            double dGB = dense_bytes / dense_ms / 1e6;
            printf("%-7d | %9.4f %7.0f %5.0f%% %9.4f %6.2f | %9.4f %9.4f %7.0f %9.4f %6.2f\n", ns[i],
                   dense_ms, dGB, 100 * dGB / copy_GBps, an ? an->dense_ms : NAN,
                   an ? dense_ms / an->dense_ms : NAN, g_ms[0], g_ms[1], g_bytes / g_ms[0] / 1e6,
                   an ? an->quest_torch_ms : NAN, an ? g_ms[0] / an->quest_torch_ms : NAN);
            printf("figure cuda_attn %s N=%d dense_ms=%.5f dense_GBps=%.0f gather1024_ms=%.5f "
                   "gather2048_ms=%.5f\n", tn, ns[i], dense_ms, dGB, g_ms[0], g_ms[1]);
        }
        /* Resident cache of L tokens: dense over a compact buffer. */
        for (int j = 0; j < 2; j++) {
            step st = {0};
            st.s = s, st.q = q, st.o = o, st.lse = lse;
            int L = 1024 << j;
            TRY(kv_make(&st, t, L, &e));
            double ms;
            TRY(step_time(&st, reps, &ms, &e));
            kv_free(&st);
            printf("resident L=%d: %.4f ms (%.0f GB/s); anchor resident_L_ms %.4f..%.4f (L not stated), "
                   "ratio %.2f\n", L, ms, step_bytes(&st, t) / ms / 1e6, anchors[1].resident_L_ms,
                   anchors[3].resident_L_ms, ms / anchors[4].resident_L_ms);
            printf("figure cuda_attn %s resident L=%d ms=%.5f\n", tn, L, ms);
        }
        /* Tuning sweep (dense) at 16384 and the largest N: block order, prefetch, split sizing. */
        for (int w = 0; w < 2 && n_bps > 0; w++) {
            int n = w ? ns[n_ns - 1] : 16384;
            if (!w && (n_ns < 2 || ns[n_ns - 1] == 16384)) continue;
            step st = {0};
            st.s = s, st.q = q, st.o = o, st.lse = lse;
            TRY(kv_make(&st, t, n, &e));
            for (int v = 0; v < 4; v++) {
                attn_cuda_tuning tun = attn_cuda_tuning_default();
                tun.heads_inner = 1 - v / 2, tun.prefetch = 1 - v % 2;
                printf("sweep N=%d heads_inner=%d prefetch=%d, ms by blocks/SM:", n, tun.heads_inner,
                       tun.prefetch);
                for (int i = 0; i < n_bps; i++) {
                    double ms;
                    tun.blocks_per_sm = bps[i];
                    TRY(attn_cuda_tune(ctx, &tun, &e));
                    TRY(step_time(&st, reps, &ms, &e));
                    printf("  %d: %.4f", bps[i], ms);
                }
                printf("\n");
            }
            attn_cuda_tuning def = attn_cuda_tuning_default();
            TRY(attn_cuda_tune(ctx, &def, &e));
            kv_free(&st);
        }
        attn_cuda_free(ctx, q), attn_cuda_free(ctx, o), attn_cuda_free(ctx, lse);
    }
    attn_cuda_destroy(ctx);
    return 0;
}
