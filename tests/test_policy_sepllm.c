/* test_policy_sepllm.c: SepLLM. Registered, flagged as needing separators; which token texts
 * are separators (policy_separator_text); refused without separators; hand-worked
 * examples (sets written from the rule: initial tokens stay, separators stay until more than
 * S are resident and then the oldest goes, everything else goes oldest first); then random
 * GQA runs through the test kit's rules (the contract's, reading the pools) with prompts
 * shorter and longer than L. */
#include "policy_testkit.h"

extern const policy_ops policy_sepllm;

static uint8_t sep_mask[256];

static void set_seps(const int *p, int n) {
    memset(sep_mask, 0, sizeof sep_mask);
    for (int i = 0; i < n; i++) sep_mask[p[i]] = 1;
}

/* One KV head, one query head; decode 0..n-1 after a prompt of n_prefill, checking the
 * set after each step against want[step] (a bit mask; 0: not checked). */
static void run_hand(int L, int n_prefill, int n, const uint64_t *want) {
    tk_cfg c = {.ops = &policy_sepllm, .n_q = 1, .n_kv = 1, .d = 4, .budget = L, .page_size = 4,
                .n_prefill = n_prefill, .n_tokens = n, .seed = 1, .separator = sep_mask};
    tk t;
    rb_err e = {0};
    RB_CHECK(tk_create(&t, &c, &e) == RB_OK);
    tk_prefill(&t);
    for (int pos = n_prefill; pos < n; pos++) {
        tk_step(&t, pos);
        if (!want[pos]) continue;
        uint64_t got = 0;
        for (int j = 0; j < t.sel.n[0]; j++) got |= 1ull << t.sel.pos[j];
        TK_CHECK(got == want[pos], "L=%d step %d: set %#llx, want %#llx", L, pos,
                 (unsigned long long)got, (unsigned long long)want[pos]);
    }
    tk_destroy(&t);
}

#define B(...) bits((int[]){__VA_ARGS__}, sizeof((int[]){__VA_ARGS__}) / sizeof(int))
static uint64_t bits(const int *p, size_t n) {
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++) b |= 1ull << p[i];
    return b;
}

static void hand_examples(void) {
    /* L=8: initial a = min(4, L/4) = 2, S = min(64, (8-2)/2) = 3. Separators 3 5 6 9 10 12. */
    set_seps((int[]){3, 5, 6, 9, 10, 12}, 6);
    uint64_t want[64] = {0};
    want[7] = B(0, 1, 2, 3, 4, 5, 6, 7);
    want[8] = B(0, 1, 3, 4, 5, 6, 7, 8);    /* 3 separators: the oldest other, 2, goes */
    want[9] = B(0, 1, 3, 5, 6, 7, 8, 9);    /* still 3: 4 goes; 9 makes 4 separators */
    want[10] = B(0, 1, 5, 6, 7, 8, 9, 10);  /* 4 > 3: the oldest separator, 3, goes */
    want[11] = B(0, 1, 6, 7, 8, 9, 10, 11); /* 5, 6, 9, 10: 4 > 3: 5 goes */
    want[12] = B(0, 1, 6, 8, 9, 10, 11, 12); /* 3 separators: 7 goes */
    want[13] = B(0, 1, 8, 9, 10, 11, 12, 13); /* 6, 9, 10, 12: 6 goes */
    run_hand(8, 0, 14, want);

    /* A prompt longer than L: L=4 (a=1, S=1), prompt 0..7 with separators 2 4 6. The first
     * append evicts down to 3: separators 2 then 4 (3 > 1, then 2 > 1), then the others 1,
     * 3, 5, oldest first: {0, 6, 7} and the new 8. */
    set_seps((int[]){2, 4, 6}, 3);
    memset(want, 0, sizeof want);
    want[8] = B(0, 6, 7, 8);
    want[9] = B(0, 6, 8, 9); /* 6 is the one separator: 7 goes */
    run_hand(4, 8, 10, want);

    /* L at its minimum, 1: a = 0, S = 0: only the current token, separator or not. */
    set_seps((int[]){2, 3}, 2);
    memset(want, 0, sizeof want);
    for (int t = 2; t < 6; t++) want[t] = 1ull << t;
    run_hand(1, 2, 6, want);

    /* A budget larger than the sequence: nothing goes. */
    memset(want, 0, sizeof want);
    want[19] = (1ull << 20) - 1;
    run_hand(64, 3, 20, want);
}

static void refused_without_separators(void) {
    tk_cfg c = {.ops = &policy_sepllm, .n_q = 2, .n_kv = 1, .d = 4, .budget = 16, .page_size = 4,
                .n_prefill = 4, .n_tokens = 20, .seed = 1, .without_separators = 1};
    tk t;
    rb_err e = {0};
    TK_CHECK(tk_create(&t, &c, &e) == RB_EINPUT && strstr(e.why, "separators"),
             "created without separators, or refused badly: %s: %s", e.what, e.why);
}

/* Random data and separators (one in five), GQA: the kit's rules hold, every KV head keeps
 * the same positions (the rule reads positions only), the initial tokens and the recent
 * window stay, at most S+1 separators are resident past the initial ones. */
static void random_run(int L, int n_prefill, int n_q, int n_kv, const char *param, int a, int S,
                       uint64_t seed) {
    uint64_t r = seed;
    for (int i = 0; i < 256; i++) sep_mask[i] = tu_uniform(&r) < 0.2;
    const char *kv[] = {param};
    tk_cfg c = {.ops = &policy_sepllm, .params = kv, .n_params = param ? 1 : 0, .n_q = n_q,
                .n_kv = n_kv, .d = 8, .budget = L, .page_size = 8, .n_prefill = n_prefill,
                .n_tokens = 200, .seed = seed, .separator = sep_mask};
    tk t;
    rb_err e = {0};
    if (tk_create(&t, &c, &e) != RB_OK) rb_die(__FILE__, __LINE__, "%s: %s", e.what, e.why);
    tk_prefill(&t);
    for (int pos = n_prefill; pos < c.n_tokens; pos++) {
        tk_step(&t, pos);
        int seps = 0;
        for (int j = 0; j <= pos; j++) {
            int in = tk_in_sel(&t, 0, j);
            for (int h = 1; h < n_q; h++)
                TK_CHECK(tk_in_sel(&t, h, j) == in, "step %d: heads differ at %d", pos, j);
            if (j < a || j > pos - (L - a - S - 1))
                TK_CHECK(in, "L=%d step %d: %d (initial or recent) missing", L, pos, j);
            seps += in && j >= a && sep_mask[j];
        }
        TK_CHECK(seps <= S + 1, "L=%d step %d: %d separators resident, S=%d", L, pos, seps, S);
    }
    tk_destroy(&t);
}

/* Parameters, resolved as the registry resolves them for a run: initial=0,
 * separators=1 at L=4, separators at 1 and 3, decode from 0: at t=4 (0..3 resident, 2
 * separators > 1) the oldest separator, 1, goes; at t=5 the one separator is 3 and the
 * oldest other, 0 (not initial now), goes. */
static void with_params(void) {
    policy_params prm;
    rb_err e = {0};
    const char *kv[] = {"initial=0", "separators=1"};
    RB_CHECK(policy_params_resolve(policy_find("sepllm", &e), kv, 2, &prm, &e) == RB_OK);
    set_seps((int[]){1, 3}, 2);
    kv_pool *pool = kv_pool_create(2, 4, 2);
    policy_config cfg = {.n_q_heads = 1, .n_kv_heads = 1, .head_dim = 2, .budget = 4,
                         .page_size = 4, .max_tokens = 64, .attn_scale = 1, .params = &prm,
                         .pools = &pool, .separator = sep_mask};
    policy_state *st;
    RB_CHECK(policy_sepllm.create(&cfg, &st, &e) == RB_OK);
    policy_sepllm.prefill(st, 0, NULL, NULL, NULL);
    int n[1];
    int32_t pos[64];
    const float *kr[64], *vr[64];
    policy_selection sel = {.n_q_heads = 1, .group_size = 1, .cap = 64, .n = n, .pos = pos,
                            .k = kr, .v = vr};
    float k[2] = {1, 0}, q[2] = {0, 0};
    uint64_t want[6] = {B(0), B(0, 1), B(0, 1, 2), B(0, 1, 2, 3), B(0, 2, 3, 4), B(2, 3, 4, 5)};
    for (int t = 0; t < 6; t++) {
        policy_sepllm.append(st, t, k, k);
        policy_step step = {.pos = t, .q = q};
        policy_sepllm.select(st, &step, &sel);
        uint64_t got = 0;
        for (int j = 0; j < n[0]; j++) got |= 1ull << pos[j];
        TK_CHECK(got == want[t], "params: step %d: %#llx, want %#llx", t, (unsigned long long)got,
                 (unsigned long long)want[t]);
    }
    policy_sepllm.destroy(st);
    TK_CHECK(kv_pool_pages_held(pool) == 0, "pages given back");
    kv_pool_destroy(pool);
}

/* The registry lists sepllm (one table: the one the tests run), and it says it needs
 * separators, so callers build the mask for it (cells_need_separators). */
static void registered(void) {
    rb_err e = {0};
    const policy_ops *ops = policy_find_choice("sepllm", &e);
    TK_CHECK(ops == &policy_sepllm, "sepllm not registered as a choice: %s", e.why);
    TK_CHECK(policy_sepllm.flags & POLICY_NEEDS_SEPARATORS, "sepllm without "
             "POLICY_NEEDS_SEPARATORS");
    int n, needing = 0;
    const policy_ops *const *l = policy_list(&n);
    for (int i = 0; i < n; i++) needing += (l[i]->flags & POLICY_NEEDS_SEPARATORS) != 0;
    TK_CHECK(needing == 1, "%d policies need separators, want sepllm alone", needing);
}

/* SepLLM's separators: . , ? ! ; : and line breaks, with at most one leading space (the
 * tokenizer's decoded "\u2581." and "\u0120,"); nothing longer, nothing else. */
static void separator_texts(void) {
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        int want;
    } cases[] = {
        {".", 0, 1},    {",", 0, 1},     {"?", 0, 1},     {"!", 0, 1},    {";", 0, 1},
        {":", 0, 1},    {"\n", 0, 1},    {" .", 0, 1},    {" ,", 0, 1},   {" \n", 0, 1},
        {"\n\n", 0, 1},  {"\r\n", 0, 1},  {"\n\n\n", 0, 1}, {"", 0, 0},     {" ", 0, 0},
        {"  .", 0, 0},  {"..", 0, 0},    {".\n", 0, 0},   {"a", 0, 0},    {" the", 0, 0},
        {"-", 0, 0},    {"\r", 0, 0},    {"\n\r", 0, 0},  {"\t", 0, 0},   {"...", 0, 0},
        {"<start_of_turn>", 0, 0},       {"\0", 1, 0},    {".", 1, 1},    {". ", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        TK_CHECK(policy_separator_text(cases[i].text, len) == cases[i].want,
                 "case %zu ('%s', %zu bytes): want %d", i, cases[i].text, len, cases[i].want);
    }
}

int main(void) {
    registered();
    separator_texts();
    refused_without_separators();
    hand_examples();
    random_run(32, 10, 4, 2, NULL, 4, 14, 3);                   /* a=4, S=min(64, 14) */
    random_run(32, 70, 8, 2, NULL, 4, 14, 4);                   /* prompt longer than L */
    random_run(64, 20, 2, 2, NULL, 4, 30, 5);
    random_run(40, 10, 4, 1, NULL, 4, 18, 6);
    with_params();
    random_run(1, 5, 2, 1, NULL, 0, 0, 7);                      /* L at its minimum */
    random_run(300, 10, 2, 2, NULL, 4, 64, 8);                  /* budget above the sequence */
    if (tk_failures) return 1;
    printf("# sepllm: registered, separator texts, refused without separators; initial + <= S "
           "separators (oldest go) + the recent window; <= L tokens\n");
    return 0;
}
