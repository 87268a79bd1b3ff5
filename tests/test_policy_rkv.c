/* test_policy_rkv.c: R-KV. Hand-worked examples on keys chosen so redundancy and importance
 * can be read off (below), the clamps at small L, then random GQA runs with the invariants:
 * never more than L tokens, the window always resident, a compression exactly when full
 * (the resident count cycles L-C+1..L), memory bounded by L. The scores themselves are
 * checked against a float64 reference in tests/e2e_policy_refs.sh. */
#include "policy_testkit.h"

/* One KV head, one query head, head_dim 2, scale 1, keys and queries given by hand. */
typedef struct mini {
    const policy_ops *ops;
    policy_params prm;
    kv_pool *pool;
    policy_state *st;
    policy_selection sel;
    int n_pos[1];
    int32_t pos[64];
    const float *kr[64], *vr[64];
    float probs[64];
} mini;

static void mini_create(mini *m, const char *param, int L) {
    memset(m, 0, sizeof *m);
    rb_err e = {0};
    m->ops = policy_find("rkv", &e);
    const char *kv[] = {param};
    RB_CHECK(policy_params_for(m->ops, kv, param ? 1 : 0, &m->prm, &e) == RB_OK);
    m->pool = kv_pool_create(2, 4, 2);
    policy_config cfg = {.n_q_heads = 1, .n_kv_heads = 1, .head_dim = 2, .budget = L,
                         .page_size = 4, .max_tokens = 64, .attn_scale = 1, .params = &m->prm,
                         .pools = &m->pool};
    RB_CHECK(m->ops->create(&cfg, &m->st, &e) == RB_OK);
    m->sel = (policy_selection){.n_q_heads = 1, .group_size = 1, .cap = 64, .n = m->n_pos,
                                .pos = m->pos, .k = m->kr, .v = m->vr};
}

/* Decode positions 0..n-1 (no prompt) with keys k[i] and query q each step; returns the set
 * of the last step as a bit mask. */
static uint64_t mini_run(mini *m, const float (*k)[2], int n, const float q[2]) {
    m->ops->prefill(m->st, 0, NULL, NULL, NULL);
    float v[2] = {0, 0};
    for (int t = 0; t < n; t++) {
        m->ops->append(m->st, t, k[t], v);
        policy_step step = {.pos = t, .q = q};
        m->ops->select(m->st, &step, &m->sel);
    }
    uint64_t mask = 0;
    for (int j = 0; j < m->sel.n[0]; j++) mask |= 1ull << m->sel.pos[j];
    m->ops->destroy(m->st);
    TK_CHECK(kv_pool_pages_held(m->pool) == 0, "pages given back");
    kv_pool_destroy(m->pool);
    return mask;
}

#define BITS(...) bits((int[]){__VA_ARGS__}, sizeof((int[]){__VA_ARGS__}) / sizeof(int))
static uint64_t bits(const int *p, size_t n) {
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++) b |= 1ull << p[i];
    return b;
}

static void hand_examples(void) {
    /* L=8: C = min(128, L/2) = 4, W = min(8, (8-4)/2) = 2: at t=8 the cache (0..7) is
     * compressed to 4: the window {6,7} and 2 of the candidates 0..5. Keys: direction A =
     * (1,0) everywhere (position 3 five times longer), B = (0,1) at position 5.
     * Redundancy (cosine, threshold 0.5, each row's latest similar key not counted): the A
     * columns 0..4 have 6 similar rows of 8 (mean 0.75), B's column 0, so after the softmax
     * red_A = 0.1465 > red_B = 0.0692. Query (1,0): logits 1 for A, 5 for position 3, 0 for B,
     * so position 3 holds importance 0.926, the other A's 0.017, B 0.006. */
    const float k[9][2] = {{1, 0}, {1, 0}, {1, 0}, {5, 0}, {1, 0}, {0, 1}, {1, 0}, {1, 0}, {1, 0}};
    const float q[2] = {1, 0};
    mini m;
    /* kernel 1 (no pooling): 0.1*0.926 - 0.9*0.1465 = -0.039 for position 3, -0.062 for B,
     * -0.130 for the other A's: keep 3 and 5. */
    mini_create(&m, "rkv.kernel=1", 8);
    uint64_t got = mini_run(&m, k, 9, q);
    TK_CHECK(got == BITS(3, 5, 6, 7, 8), "kernel 1: set %#llx", (unsigned long long)got);
    /* kernel 7: max pooling gives every candidate 0.926: B (+0.030) is kept first, then the
     * A's tie at -0.039 and the lowest position, 0, stays. */
    mini_create(&m, NULL, 8);
    got = mini_run(&m, k, 9, q);
    TK_CHECK(got == BITS(0, 5, 6, 7, 8), "kernel 7: set %#llx", (unsigned long long)got);
    /* lambda 0: redundancy alone: B, then the A's tie (red 0.1465): 0. */
    mini_create(&m, "rkv.lambda=0", 8);
    got = mini_run(&m, k, 9, q);
    TK_CHECK(got == BITS(0, 5, 6, 7, 8), "lambda 0: set %#llx", (unsigned long long)got);
    /* lambda 1 with kernel 1: importance alone: 3, then the A's (0.017) before B (0.006). */
    const char *both[] = {"rkv.lambda=1", "rkv.kernel=1"};
    memset(&m, 0, sizeof m);
    {
        rb_err e = {0};
        m.ops = policy_find("rkv", &e);
        RB_CHECK(policy_params_for(m.ops, both, 2, &m.prm, &e) == RB_OK);
        m.pool = kv_pool_create(2, 4, 2);
        policy_config cfg = {.n_q_heads = 1, .n_kv_heads = 1, .head_dim = 2, .budget = 8,
                             .page_size = 4, .max_tokens = 64, .attn_scale = 1, .params = &m.prm,
                             .pools = &m.pool};
        RB_CHECK(m.ops->create(&cfg, &m.st, &e) == RB_OK);
        m.sel = (policy_selection){.n_q_heads = 1, .group_size = 1, .cap = 64, .n = m.n_pos,
                                   .pos = m.pos, .k = m.kr, .v = m.vr};
    }
    got = mini_run(&m, k, 9, q);
    TK_CHECK(got == BITS(0, 3, 6, 7, 8), "lambda 1: set %#llx", (unsigned long long)got);

    drv d;
    /* L at its minimum, 1: only the current token. */
    drv_create(&d, "rkv", NULL, NULL, 1, 4);
    drv_prefill(&d, 3);
    for (int t = 3; t < 8; t++) drv_step(&d, t, (int[]){t}, 1, NULL);
    drv_destroy(&d);
    /* L=2: C=1, W=1: the previous token (the window) and the current one. */
    drv_create(&d, "rkv", NULL, NULL, 2, 4);
    drv_prefill(&d, 3);
    for (int t = 3; t < 8; t++) drv_step(&d, t, (int[]){t - 1, t}, 2, NULL);
    drv_destroy(&d);
    /* A budget larger than the sequence: nothing is ever evicted. */
    int all[64];
    for (int i = 0; i < 64; i++) all[i] = i;
    drv_create(&d, "rkv", NULL, NULL, 64, 4);
    drv_prefill(&d, 3);
    for (int t = 3; t < 30; t++) drv_step(&d, t, all, t + 1, NULL);
    drv_destroy(&d);
}

static void random_run(int L, int n_prefill, int n_q, int n_kv, const char *param, int C,
                       int W, uint64_t seed) {
    tk t;
    tk_start(&t, "rkv", param, L, n_prefill, n_q, n_kv, 240, seed);
    int compressions = tk_run_batched(&t, C, W);
    if (t.c.n_tokens > L + C)
        TK_CHECK(compressions >= (t.c.n_tokens - n_prefill - L) / C - 1, "L=%d: %d compressions",
                 L, compressions);
    tk_destroy(&t);
}

int main(void) {
    hand_examples();
    tk_expect_refused("rkv", "rkv.kernel=6"); /* pooling is centred: an odd kernel */
    random_run(64, 20, 4, 2, NULL, 32, 8, 3);                /* GQA: C = L/2, W = 8 */
    random_run(64, 90, 8, 2, NULL, 32, 8, 4);                /* prompt longer than L */
    random_run(40, 10, 4, 1, "rkv.interval=5", 5, 8, 5);
    random_run(40, 10, 2, 2, "rkv.window=30", 20, 10, 6);    /* W clamped to (L-C)/2 */
    random_run(1, 5, 4, 1, NULL, 1, 0, 7);                   /* L at its minimum */
    random_run(300, 10, 2, 2, NULL, 128, 8, 8);              /* budget above the sequence */
    if (tk_failures) return 1;
    printf("# rkv: hand examples of importance, pooling and redundancy; compresses exactly when "
           "full, window kept; <= L tokens, bytes bounded by L\n");
    return 0;
}
