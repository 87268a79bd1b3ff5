/* test_kv_logic.c: the device policies' decisions (kernels/cuda/kv_logic.h) on the CPU,
 * against the CPU policies run by harness/engine/stepper.c on the same random q, k, v:
 * the same attended positions for every query head at every step, and the same resident
 * bytes (pages held), for dense, window, quest (gqa group and head) and raas (every
 * parameter), P = 16, budgets 64..256, prompts of 0, 5 and 37 tokens, G = 1 and 4, 320
 * positions. The emulator below does what the kernels of kv_cuda.cu do, one lane at a
 * time: the decisions through kv_logic.h, the Quest bounds in double (kvl_bound), the top-k
 * by the rank rule, and for raas's exact mass an attention in double.
 *
 * Also: kvd_layer_from_policy over every registered policy, the budget messages of
 * kvl_check_budget against the CPU policies' own, and kvl_order_key's order. */
#include "testutil.h" /* first: it sets _POSIX_C_SOURCE */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/kv_cuda.h"
#include "cuda/kv_logic.h"
#include "policy.h"
#include "stepper.h"

typedef struct emu {
    int policy, per_head, n_kv, G, Hq, d, P, max_tokens, rows, list_cap;
    float scale;
    kvl_pool pool;
    int pool_cap;
    kvl_lane lanes[8];
    float *pk, *pv, *pmn, *pmx; /* [pool_cap, P, d] and [pool_cap, d] */
    int *cnt, *ntok;            /* [rows] */
    int32_t *list_log, *list_phys; /* [rows, list_cap] */
    uint64_t *list_mask;
} emu;

static void emu_init(emu *m, const kvd_layer *ly, int n_kv, int G, int d, int P, int max_tokens,
                     float scale) {
    memset(m, 0, sizeof *m);
    m->policy = (int)ly->policy;
    m->per_head = ly->policy == KVD_QUEST && ly->quest_per_head;
    m->n_kv = n_kv, m->G = G, m->Hq = n_kv * G, m->d = d, m->P = P, m->max_tokens = max_tokens;
    m->scale = scale;
    m->rows = m->per_head ? m->Hq : n_kv;
    int max_pages = (max_tokens + P - 1) / P;
    int max_loc = (ly->budget < max_tokens ? ly->budget : max_tokens) + 1;
    m->list_cap = max_pages > max_loc ? max_pages : max_loc;
    m->pool_cap = n_kv * m->list_cap;
    m->pool.free_ids = rb_malloc(sizeof(int32_t) * (size_t)m->pool_cap);
    for (int i = 0; i < m->pool_cap; i++) m->pool.free_ids[i] = m->pool_cap - 1 - i;
    m->pool.n_free = m->pool_cap;
    m->pk = rb_calloc((size_t)m->pool_cap * P * d, sizeof(float));
    m->pv = rb_calloc((size_t)m->pool_cap * P * d, sizeof(float));
    m->pmn = rb_calloc((size_t)m->pool_cap * d, sizeof(float));
    m->pmx = rb_calloc((size_t)m->pool_cap * d, sizeof(float));
    m->cnt = rb_calloc((size_t)m->rows, sizeof(int));
    m->ntok = rb_calloc((size_t)m->rows, sizeof(int));
    m->list_log = rb_calloc((size_t)m->rows * m->list_cap, sizeof(int32_t));
    m->list_phys = rb_calloc((size_t)m->rows * m->list_cap, sizeof(int32_t));
    m->list_mask = rb_calloc((size_t)m->rows * m->list_cap, sizeof(uint64_t));
    for (int g = 0; g < n_kv; g++) {
        kvl_lane *ln = &m->lanes[g];
        memset(ln, 0, sizeof *ln);
        ln->policy = m->policy, ln->P = P, ln->d = d, ln->budget = ly->budget;
        ln->max_pages = max_pages, ln->max_tokens = max_tokens, ln->max_loc = max_loc;
        ln->last = -1;
        ln->raas_exact = ly->raas_exact_score, ln->raas_threshold = ly->raas_threshold;
        ln->raas_budget_decode = ly->raas_budget_decode, ln->raas_pin_prefill = ly->raas_pin_prefill;
        ln->raas_r = ly->raas_r, ln->raas_alpha = ly->raas_alpha;
        ln->cap_pages = ly->budget / P;
        ln->ltp = rb_malloc(sizeof(int32_t) * (size_t)max_pages);
        for (int i = 0; i < max_pages; i++) ln->ltp[i] = -1;
        ln->slot_of = rb_malloc(sizeof(int32_t) * (size_t)max_tokens);
        for (int i = 0; i < max_tokens; i++) ln->slot_of[i] = -1;
        ln->loc_phys = rb_calloc((size_t)max_loc, sizeof(int32_t));
        ln->loc_mode = rb_calloc((size_t)max_loc, 1);
        ln->loc_used_n = rb_calloc((size_t)max_loc, sizeof(int32_t));
        ln->loc_used = rb_calloc((size_t)max_loc, sizeof(uint64_t));
        ln->free_loc = rb_calloc((size_t)max_loc, sizeof(int32_t));
        ln->partial = rb_calloc((size_t)max_loc, sizeof(int32_t));
        ln->in_partial = rb_calloc((size_t)max_loc, 1);
        ln->state = rb_calloc((size_t)max_pages, 1);
        ln->ts = rb_calloc((size_t)max_pages, sizeof(int32_t));
        ln->ev = rb_calloc((size_t)max_pages, sizeof(int32_t));
        ln->res = rb_calloc((size_t)max_pages, sizeof(int32_t));
    }
}

static void emu_free(emu *m) {
    for (int g = 0; g < m->n_kv; g++) {
        kvl_lane *ln = &m->lanes[g];
        free(ln->ltp), free(ln->slot_of), free(ln->loc_phys), free(ln->loc_mode);
        free(ln->loc_used_n), free(ln->loc_used), free(ln->free_loc), free(ln->partial);
        free(ln->in_partial), free(ln->state), free(ln->ts), free(ln->ev), free(ln->res);
    }
    free(m->pool.free_ids), free(m->pk), free(m->pv), free(m->pmn), free(m->pmx);
    free(m->cnt), free(m->ntok), free(m->list_log), free(m->list_phys), free(m->list_mask);
}

static int emu_held(const emu *m) {
    int n = 0;
    for (int g = 0; g < m->n_kv; g++) n += m->lanes[g].n_held;
    return n;
}

static void list_put(emu *m, int r, int i, int page, int phys, uint64_t mask) {
    m->list_log[(size_t)r * m->list_cap + i] = page;
    m->list_phys[(size_t)r * m->list_cap + i] = phys;
    m->list_mask[(size_t)r * m->list_cap + i] = mask;
}

static uint64_t mask_of(int n) { return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1); }

/* The positions of a list entry's valid slots (window lanes: through slot_of). */
static double page_bound_max(const emu *m, const float *q, int h0, int nh, int phys) {
    double best = -INFINITY;
    for (int h = h0; h < h0 + nh; h++) {
        double b = kvl_bound(q + (size_t)h * m->d, m->pmn + (size_t)phys * m->d,
                             m->pmx + (size_t)phys * m->d, m->d);
        if (b > best) best = b;
    }
    return best;
}

/* One step as kv_cuda.cu's kernels do it. */
static void emu_step(emu *m, int pos, int prefill, const float *q, const float *k) {
    int P = m->P, d = m->d, cur = pos / P;
    /* k_append */
    for (int g = 0; g < m->n_kv; g++) {
        kvl_lane *ln = &m->lanes[g];
        int phys, slot, fresh = 0;
        if (ln->policy == KVL_WINDOW) {
            int w = kvl_window_append(&m->pool, ln, pos);
            TU_ASSERT(w >= 0, "window append failed (err %d/%d)", ln->err, m->pool.err);
            phys = ln->loc_phys[w / P], slot = w % P;
        } else {
            phys = kvl_paged_append(&m->pool, ln, pos, prefill, &fresh);
            TU_ASSERT(phys >= 0, "paged append failed (err %d/%d)", ln->err, m->pool.err);
            slot = pos % P;
        }
        const float *kr = k + (size_t)g * d;
        memcpy(m->pk + ((size_t)phys * P + slot) * d, kr, sizeof(float) * d);
        float *mn = m->pmn + (size_t)phys * d, *mx = m->pmx + (size_t)phys * d;
        for (int i = 0; i < d; i++) {
            if (fresh || kr[i] < mn[i]) mn[i] = kr[i];
            if (fresh || kr[i] > mx[i]) mx[i] = kr[i];
        }
    }
    if (m->pool.held > m->pool.peak) m->pool.peak = m->pool.held;
    /* k_select_list, k_quest_bounds + k_quest_topk */
    for (int r = 0; r < m->rows; r++) {
        kvl_lane *ln = &m->lanes[m->per_head ? r / m->G : r];
        if (ln->policy == KVL_WINDOW) {
            for (int i = 0; i < ln->n_loc; i++) {
                int on = ln->loc_mode[i] == KVL_LOC_SLOTS;
                list_put(m, r, i, i, on ? ln->loc_phys[i] : -1, on ? ln->loc_used[i] : 0);
            }
            m->cnt[r] = ln->n_loc, m->ntok[r] = ln->last - ln->lo + 1;
            continue;
        }
        int n = 0;
        if (ln->policy == KVL_QUEST && !prefill && !kvl_quest_all(ln, pos)) {
            int h0 = m->per_head ? r : r * m->G, nh = m->per_head ? 1 : m->G;
            double *sc = rb_malloc(sizeof(double) * (size_t)(cur + 1));
            for (int p = 0; p < cur; p++) sc[p] = page_bound_max(m, q, h0, nh, ln->ltp[p]);
            int kk = ln->budget / P - 1;
            for (int p = 0; p < cur; p++)
                if (kvl_topk_rank_chosen(sc, cur, kk, p)) list_put(m, r, n++, p, ln->ltp[p], mask_of(P));
            TU_ASSERT(n == kk, "quest top-k chose %d of %d", n, kk);
            free(sc);
            list_put(m, r, n++, cur, ln->ltp[cur], mask_of(pos % P + 1));
        } else if (ln->policy == KVL_RAAS && !prefill) {
            for (int i = 0; i < ln->n_res; i++) {
                int p = ln->res[i];
                list_put(m, r, n++, p, ln->ltp[p], p < cur ? mask_of(P) : mask_of(pos % P + 1));
            }
        } else {
            for (int p = 0; p <= cur; p++)
                list_put(m, r, n++, p, ln->ltp[p], p < cur ? mask_of(P) : mask_of(pos % P + 1));
        }
        m->cnt[r] = n, m->ntok[r] = (n - 1) * P + pos % P + 1;
    }
    /* k_raas_observe */
    if (m->policy != KVL_RAAS || prefill) return;
    for (int g = 0; g < m->n_kv; g++) {
        kvl_lane *ln = &m->lanes[g];
        if (ln->n_ev == 0) continue;
        int n_ev = ln->n_ev, h0 = g * m->G, t = pos;
        double *mass = rb_calloc((size_t)ln->max_pages, sizeof(double));
        double *sc = rb_calloc((size_t)n_ev, sizeof(double));
        if (ln->raas_exact || ln->raas_threshold) {
            int n = m->cnt[g];
            for (int h = h0; h < h0 + m->G; h++) {
                /* softmax over the attended tokens in double */
                double mx = -INFINITY, z = 0;
                double *lg = rb_malloc(sizeof(double) * (size_t)n * P);
                for (int i = 0; i < n; i++) {
                    int phys = m->list_phys[(size_t)g * m->list_cap + i];
                    uint64_t mk = m->list_mask[(size_t)g * m->list_cap + i];
                    for (int s = 0; s < P; s++) {
                        double x = -INFINITY;
                        if ((mk >> s) & 1) {
                            const float *kr = m->pk + ((size_t)phys * P + s) * d;
                            x = 0;
                            for (int c = 0; c < d; c++) x += (double)q[(size_t)h * d + c] * kr[c];
                            x *= m->scale;
                        }
                        lg[(size_t)i * P + s] = x;
                        if (x > mx) mx = x;
                    }
                }
                for (int j = 0; j < n * P; j++) z += exp(lg[j] - mx);
                for (int i = 0; i < n; i++) {
                    int p = m->list_log[(size_t)g * m->list_cap + i];
                    if (ln->state[p] != KVL_PG_EVICTABLE) continue;
                    double pm = 0;
                    for (int s = 0; s < P; s++) pm += exp(lg[(size_t)i * P + s] - mx) / z;
                    if (pm > mass[p]) mass[p] = pm;
                }
                free(lg);
            }
            if (ln->raas_threshold) {
                for (int i = 0; i < n_ev; i++) {
                    int p = ln->ev[i], lo = p * P, hi = lo + P;
                    int n_tok = (hi > t + 1 ? t + 1 : hi) - lo;
                    if (mass[p] / n_tok * m->ntok[g] > ln->raas_alpha) ln->ts[p] = t;
                }
                free(mass), free(sc);
                continue;
            }
            for (int i = 0; i < n_ev; i++) sc[i] = mass[ln->ev[i]];
        } else {
            for (int i = 0; i < n_ev; i++) sc[i] = page_bound_max(m, q, h0, m->G, ln->ltp[ln->ev[i]]);
        }
        int kk = kvl_raas_refresh_k(ln->raas_r, n_ev);
        int *ch = rb_calloc((size_t)n_ev, sizeof(int));
        for (int i = 0; i < n_ev; i++) {
            int beat = 0;
            for (int j = 0; j < n_ev; j++)
                beat += sc[j] > sc[i] || (sc[j] == sc[i] && ln->ev[j] < ln->ev[i]);
            ch[i] = beat < kk;
        }
        for (int i = 0; i < n_ev; i++)
            if (ch[i]) ln->ts[ln->ev[i]] = t;
        free(ch), free(mass), free(sc);
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The emulator's attended positions of query head h, ascending. */
static int emu_selection(const emu *m, int h, int32_t *out) {
    int r = m->per_head ? h : h / m->G, n = 0;
    const kvl_lane *ln = &m->lanes[h / m->G];
    if (ln->policy == KVL_WINDOW) {
        for (int t = ln->lo; t <= ln->last; t++) out[n++] = t;
        return n;
    }
    for (int i = 0; i < m->cnt[r]; i++) {
        int p = m->list_log[(size_t)r * m->list_cap + i];
        for (int t = p * m->P; t < (p + 1) * m->P && t <= ln->last; t++) out[n++] = t;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_i32);
    return n;
}

typedef struct scenario {
    const char *policy;
    const char *params[4];
    int budget;
} scenario;

static int n_runs;

static void run_one(const scenario *sc, int n_prompt, int G) {
    const int n_kv = 2, d = 32, P = 16, T = 320, Hq = n_kv * G;
    rb_err e = {0};
    const policy_ops *ops = policy_find(sc->policy, &e);
    TU_ASSERT(ops, "policy %s", sc->policy);
    int n_params = 0;
    while (n_params < 4 && sc->params[n_params]) n_params++;
    policy_params params;
    TU_OK(policy_params_resolve(ops, sc->params, n_params, &params, &e), e);
    kvd_layer ly;
    TU_OK(kvd_layer_from_policy(ops, &params, sc->budget, &ly, &e), e);
    policy_config cfg = {.layer = 0, .n_q_heads = Hq, .n_kv_heads = n_kv, .head_dim = d,
                         .budget = sc->budget, .page_size = P, .max_tokens = T,
                         .attn_scale = 1.0f / sqrtf((float)d), .seed = 7, .params = &params};
    stepper *st;
    TU_OK(stepper_create(ops, &cfg, 2, NULL, &st, &e), e);
    emu m;
    emu_init(&m, &ly, n_kv, G, d, P, T, cfg.attn_scale);
    uint64_t rng = 0x5eed0000u + (uint64_t)n_prompt * 131 + (uint64_t)G * 7 + (uint64_t)sc->budget;
    float *q = rb_malloc(sizeof(float) * (size_t)Hq * d), *k = rb_malloc(sizeof(float) * (size_t)n_kv * d);
    float *v = rb_malloc(sizeof(float) * (size_t)n_kv * d), *out = rb_malloc(sizeof(float) * (size_t)Hq * d);
    int32_t *a = rb_malloc(sizeof(int32_t) * T), *b = rb_malloc(sizeof(int32_t) * T);
    int win = ly.policy == KVD_WINDOW ? sc->budget : 0;
    for (int pos = 0; pos < T; pos++) {
        for (int i = 0; i < Hq * d; i++) q[i] = (float)tu_randn(&rng);
        for (int i = 0; i < n_kv * d; i++) k[i] = (float)tu_randn(&rng), v[i] = (float)tu_randn(&rng);
        int prefill = pos < n_prompt;
        /* model.c: a window layer's prompt token past the window is a window step */
        if (prefill && (win == 0 || pos < win)) stepper_prefill_token(st, pos, q, k, v, out);
        else stepper_step(st, pos, q, k, v, NULL, NULL, 0, out);
        emu_step(&m, pos, prefill, q, k);
        if (prefill) continue; /* the CPU keeps the prompt outside its pools until the first step */
        const policy_selection *sel = stepper_selection(st);
        for (int h = 0; h < Hq; h++) {
            int row = stepper_set_row(sel, h), n = sel->n[row];
            memcpy(a, sel->pos + (size_t)row * sel->cap, sizeof(int32_t) * (size_t)n);
            qsort(a, (size_t)n, sizeof *a, cmp_i32);
            int nb = emu_selection(&m, h, b);
            TU_ASSERT(n == nb && !memcmp(a, b, sizeof(int32_t) * (size_t)n),
                      "%s L=%d prompt %d G=%d pos %d head %d: CPU attends %d positions, device "
                      "logic %d (first %d vs %d)",
                      sc->policy, sc->budget, n_prompt, G, pos, h, n, nb, n ? a[0] : -1,
                      nb ? b[0] : -1);
        }
        int64_t dev_bytes = (int64_t)emu_held(&m) * P * d * 2 * 2;
        TU_ASSERT(stepper_kv_bytes(st) == dev_bytes,
                  "%s L=%d prompt %d G=%d pos %d: CPU holds %lld bytes, device logic %lld",
                  sc->policy, sc->budget, n_prompt, G, pos, (long long)stepper_kv_bytes(st),
                  (long long)dev_bytes);
        TU_ASSERT(m.pool.err == 0 && m.lanes[0].err == 0 && m.lanes[1].err == 0, "errors");
    }
    free(q), free(k), free(v), free(out), free(a), free(b);
    emu_free(&m);
    stepper_destroy(st);
    n_runs++;
}

static void test_policies_against_cpu(void) {
    static const scenario sc[] = {
        {"dense", {NULL}, 64},
        {"window", {NULL}, 20}, /* prompt 37 crosses it: window steps in the prompt */
        {"window", {NULL}, 64},
        {"window", {NULL}, 100},
        {"window", {NULL}, 256},
        {"quest", {NULL}, 64},
        {"quest", {NULL}, 100},
        {"quest", {NULL}, 256},
        {"quest", {"gqa=head", NULL}, 64},
        {"quest", {"gqa=head", NULL}, 128},
        {"raas", {NULL}, 64},
        {"raas", {NULL}, 100},
        {"raas", {NULL}, 256},
        {"raas", {"score=exact", NULL}, 64},
        {"raas", {"refresh=threshold", NULL}, 64},
        {"raas", {"refresh=threshold", "alpha=0.5", NULL}, 128},
        {"raas", {"r=0.3", NULL}, 128},
        {"raas", {"r=1", NULL}, 64},
        {"raas", {"r=0", NULL}, 64},
        {"raas", {"budget=decode", NULL}, 64},
        {"raas", {"pin_prefill=0", NULL}, 64},
        {"raas", {"pin_prefill=0", "budget=decode", NULL}, 96},
        {"raas", {"score=exact", "pin_prefill=0", NULL}, 128},
    };
    static const int prompts[] = {0, 5, 37};
    static const int groups[] = {1, 4};
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
        for (int p = 0; p < 3; p++)
            for (int g = 0; g < 2; g++) run_one(&sc[i], prompts[p], groups[g]);
}

/* Every registered policy maps to a device layer or fails with kv_cuda.h's message. */
static void test_layer_from_policy(void) {
    int n = 0;
    const policy_ops *const *list = policy_list(&n);
    int mapped = 0;
    for (int i = 0; i < n; i++) {
        rb_err e = {0};
        policy_params params;
        TU_OK(policy_params_resolve(list[i], NULL, 0, &params, &e), e);
        kvd_layer ly;
        rb_status st = kvd_layer_from_policy(list[i], &params, 128, &ly, &e);
        const char *nm = list[i]->name;
        int device = !strcmp(nm, "dense") || !strcmp(nm, "window") || !strcmp(nm, "quest") ||
                     !strcmp(nm, "raas");
        if (device) {
            TU_ASSERT(st == RB_OK && ly.budget == 128, "%s should map", nm);
            mapped++;
        } else {
            TU_ASSERT(st == RB_EINPUT && !strcmp(e.what, nm) &&
                          !strcmp(e.why, "no device implementation (the device runs dense, "
                                         "quest, raas; window on sliding-window layers)"),
                      "%s: got %d '%s: %s'", nm, (int)st, e.what, e.why);
        }
    }
    TU_ASSERT(mapped == 4, "mapped %d policies", mapped);
    /* parameters carried over */
    rb_err e = {0};
    const policy_ops *raas = policy_find("raas", &e);
    const char *kv[] = {"score=exact", "refresh=threshold", "r=0.25", "alpha=2", "budget=decode",
                        "pin_prefill=0"};
    policy_params params;
    TU_OK(policy_params_resolve(raas, kv, 6, &params, &e), e);
    kvd_layer ly;
    TU_OK(kvd_layer_from_policy(raas, &params, 64, &ly, &e), e);
    TU_ASSERT(ly.policy == KVD_RAAS && ly.raas_exact_score && ly.raas_threshold &&
                  ly.raas_r == 0.25 && ly.raas_alpha == 2 && ly.raas_budget_decode &&
                  !ly.raas_pin_prefill,
              "raas parameters");
    TU_OK(policy_params_resolve(raas, NULL, 0, &params, &e), e);
    TU_OK(kvd_layer_from_policy(raas, &params, 64, &ly, &e), e);
    TU_ASSERT(!ly.raas_exact_score && !ly.raas_threshold && ly.raas_r == 0.5 &&
                  !ly.raas_budget_decode && ly.raas_pin_prefill,
              "raas defaults");
    const policy_ops *quest = policy_find("quest", &e);
    const char *gh[] = {"gqa=head"};
    TU_OK(policy_params_resolve(quest, gh, 1, &params, &e), e);
    TU_OK(kvd_layer_from_policy(quest, &params, 64, &ly, &e), e);
    TU_ASSERT(ly.policy == KVD_QUEST && ly.quest_per_head, "quest gqa=head");
}

/* kvl_check_budget's verdicts and messages are the CPU policies' own. */
static void test_budget_messages(void) {
    static const struct { const char *name; int policy, budget; } cases[] = {
        {"window", KVL_WINDOW, 0}, {"window", KVL_WINDOW, 1},  {"quest", KVL_QUEST, 0},
        {"quest", KVL_QUEST, 31},  {"quest", KVL_QUEST, 32},   {"raas", KVL_RAAS, 17},
        {"raas", KVL_RAAS, 32},    {"dense", KVL_DENSE, 5000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rb_err e1 = {0}, e2 = {0};
        const policy_ops *ops = policy_find(cases[i].name, &e1);
        policy_params params;
        TU_OK(policy_params_resolve(ops, NULL, 0, &params, &e1), e1);
        policy_config cfg = {.n_q_heads = 4, .n_kv_heads = 1, .head_dim = 64,
                             .budget = cases[i].budget, .page_size = 16, .max_tokens = 256,
                             .attn_scale = 1, .params = &params};
        stepper *st = NULL;
        rb_status s_cpu = stepper_create(ops, &cfg, 2, NULL, &st, &e1);
        stepper_destroy(st);
        rb_status s_dev = kvl_check_budget(cases[i].policy, cases[i].budget, 16, &e2);
        TU_ASSERT(s_cpu == s_dev, "%s L=%d: CPU %d, device %d", cases[i].name, cases[i].budget,
                  (int)s_cpu, (int)s_dev);
        if (s_cpu)
            TU_ASSERT(!strcmp(e1.what, e2.what) && !strcmp(e1.why, e2.why),
                      "%s L=%d: CPU '%s: %s', device '%s: %s'", cases[i].name, cases[i].budget,
                      e1.what, e1.why, e2.what, e2.why);
    }
}

static void test_order_key(void) {
    const double x[] = {-INFINITY, -1e300, -2.5, -1, -1e-300, -0.0, 0.0, 1e-300, 1, 2.5, 1e300,
                        INFINITY};
    int n = (int)(sizeof x / sizeof x[0]);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            uint64_t a = kvl_order_key(x[i]), b = kvl_order_key(x[j]);
            TU_ASSERT((x[i] < x[j]) == (a < b) && (x[i] == x[j]) == (a == b),
                      "order of %g and %g", x[i], x[j]);
        }
    /* the rank rule is pu_topk's: ties go to the lower index */
    const double s[] = {1, 3, 3, 2, 3, 0};
    int want[] = {0, 1, 1, 0, 0, 0}; /* k = 2: the first two 3s */
    for (int i = 0; i < 6; i++)
        TU_ASSERT(kvl_topk_rank_chosen(s, 6, 2, i) == want[i], "rank rule at %d", i);
    TU_ASSERT(kvl_raas_refresh_k(0.5, 3) == 2 && kvl_raas_refresh_k(0.5, 4) == 2 &&
                  kvl_raas_refresh_k(0, 5) == 0 && kvl_raas_refresh_k(1, 5) == 5 &&
                  kvl_raas_refresh_k(0.3, 10) == 3,
              "refresh count");
}

int main(void) {
    test_order_key();
    test_budget_messages();
    test_layer_from_policy();
    test_policies_against_cpu();
    printf("test_kv_logic: %d policy runs of 320 positions equal to the CPU policies\n", n_runs);
    return tu_done("test_kv_logic");
}
