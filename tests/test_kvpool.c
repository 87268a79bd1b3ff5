/* test_kvpool.c: the paged KV pool: pages given back are really freed (allocated bytes go
 * down, ids are reused), resident bytes count whole pages at the reporting element size,
 * the slot allocator reuses freed slots before taking a page and gives a page back when its
 * last slot goes, rows hold what was stored, tokens held and held rows are counted. */
#include "kvpool.h"
#include "policy_testkit.h"

static void test_pages(void) {
    const int d = 8, P = 4;
    kv_pool *p = kv_pool_create(d, P, 2);
    TK_CHECK(kv_pool_allocated_bytes(p) == 0 && kv_pool_resident_bytes(p) == 0, "empty pool");
    int a = kv_pool_page_take(p), b = kv_pool_page_take(p), c = kv_pool_page_take(p);
    TK_CHECK(a != b && b != c && a != c, "ids %d %d %d distinct", a, b, c);
    TK_CHECK(kv_pool_pages_held(p) == 3, "held %d", kv_pool_pages_held(p));
    /* 3 pages x 4 slots x 8 dims x 2 (K,V) x 2 bytes (fp16) */
    TK_CHECK(kv_pool_resident_bytes(p) == 3 * 4 * 8 * 2 * 2, "resident %lld",
             (long long)kv_pool_resident_bytes(p));
    TK_CHECK(kv_pool_allocated_bytes(p) == 3 * 4 * 8 * 2 * 4, "allocated %lld",
             (long long)kv_pool_allocated_bytes(p));
    float k[8], v[8];
    for (int i = 0; i < d; i++) k[i] = (float)i, v[i] = (float)-i;
    kv_pool_store(p, (kv_slot){b, 3}, k, v);
    TK_CHECK(!memcmp(kv_pool_k(p, b, 3), k, sizeof k) && !memcmp(kv_pool_v(p, b, 3), v, sizeof v),
             "stored rows read back");
    TK_CHECK(kv_pool_k(p, b, 3) != kv_pool_v(p, b, 3), "k and v rows distinct");
    kv_pool_page_give(p, b);
    TK_CHECK(kv_pool_pages_held(p) == 2, "held after give %d", kv_pool_pages_held(p));
    TK_CHECK(kv_pool_allocated_bytes(p) == 2 * 4 * 8 * 2 * 4, "allocated went down: %lld",
             (long long)kv_pool_allocated_bytes(p));
    int b2 = kv_pool_page_take(p);
    TK_CHECK(b2 == b, "freed id reused (%d, was %d)", b2, b);
    TK_CHECK(kv_pool_peak_pages(p) == 3, "peak %d", kv_pool_peak_pages(p));
    kv_pool_page_give(p, a);
    kv_pool_page_give(p, b2);
    kv_pool_page_give(p, c);
    TK_CHECK(kv_pool_allocated_bytes(p) == 0 && kv_pool_pages_held(p) == 0, "all given back");
    kv_pool_destroy(p);
    kv_pool_destroy(NULL);
}

static void test_slots(void) {
    const int d = 4, P = 4;
    kv_pool *p = kv_pool_create(d, P, 2);
    kv_slot s[9];
    for (int i = 0; i < 9; i++) s[i] = kv_pool_slot_take(p);
    TK_CHECK(kv_pool_pages_held(p) == 3, "9 slots of 4 per page: 3 pages, held %d",
             kv_pool_pages_held(p));
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < i; j++)
            TK_CHECK(s[i].page != s[j].page || s[i].slot != s[j].slot, "slots %d, %d differ", i, j);
    /* Free one slot in a full page: the next take must reuse it, not open a page. */
    kv_slot freed = s[5];
    kv_pool_slot_give(p, freed);
    kv_slot again = kv_pool_slot_take(p);
    TK_CHECK(again.page == freed.page && again.slot == freed.slot, "freed slot reused");
    TK_CHECK(kv_pool_pages_held(p) == 3, "no new page for a reused slot");
    /* Emptying a page gives it back. */
    int page0 = s[0].page;
    for (int i = 0; i < 9; i++)
        if (s[i].page == page0) kv_pool_slot_give(p, s[i]);
    TK_CHECK(kv_pool_pages_held(p) == 2, "an empty page goes back: held %d",
             kv_pool_pages_held(p));
    TK_CHECK(kv_pool_allocated_bytes(p) == 2 * 4 * 4 * 2 * 4, "allocated %lld",
             (long long)kv_pool_allocated_bytes(p));
    /* Sliding window churn: take one, give the oldest, many times. Memory must stay flat. */
    kv_slot ring[8];
    int n_ring = 0;
    for (int i = 0; i < 9; i++)
        if (s[i].page != page0 && !(s[i].page == freed.page && s[i].slot == freed.slot))
            ring[n_ring++] = s[i];
    ring[n_ring++] = again;
    int held = kv_pool_pages_held(p);
    for (int it = 0; it < 1000; it++) {
        kv_pool_slot_give(p, ring[it % n_ring]);
        ring[it % n_ring] = kv_pool_slot_take(p);
        TK_CHECK(kv_pool_pages_held(p) <= held, "churn %d grew to %d pages", it,
                 kv_pool_pages_held(p));
    }
    for (int i = 0; i < n_ring; i++) kv_pool_slot_give(p, ring[i]);
    TK_CHECK(kv_pool_pages_held(p) == 0 && kv_pool_allocated_bytes(p) == 0, "all slots back");
    kv_pool_destroy(p);
}

/* Tokens held: a page taken whole counts a slot from its first write (once, however often
 * it is written), an allocator slot from its take; giving back uncounts. A row is "held"
 * only while its slot holds a token, and only at a row's start. */
static void test_tokens_held(void) {
    const int d = 4, P = 4;
    kv_pool *p = kv_pool_create(d, P, 2);
    float k[4] = {1, 2, 3, 4}, v[4] = {5, 6, 7, 8};
    int a = kv_pool_page_take(p);
    TK_CHECK(kv_pool_tokens_held(p) == 0, "a page taken holds no token yet");
    TK_CHECK(!kv_pool_holds_row(p, kv_pool_k(p, a, 0)), "an unwritten slot's row is not held");
    kv_pool_store(p, (kv_slot){a, 0}, k, v);
    kv_pool_store(p, (kv_slot){a, 2}, k, v);
    kv_pool_store(p, (kv_slot){a, 2}, v, k); /* overwrite: still one token */
    TK_CHECK(kv_pool_tokens_held(p) == 2, "two written slots: %d", kv_pool_tokens_held(p));
    TK_CHECK(kv_pool_holds_row(p, kv_pool_k(p, a, 2)) && !kv_pool_holds_row(p, kv_pool_k(p, a, 1)),
             "written slot held, skipped one not");
    TK_CHECK(!kv_pool_holds_row(p, kv_pool_k(p, a, 2) + 1), "inside a row is not a row");
    TK_CHECK(!kv_pool_holds_row(p, k), "memory outside the pool is not held");
    kv_slot s1 = kv_pool_slot_take(p), s2 = kv_pool_slot_take(p);
    TK_CHECK(kv_pool_tokens_held(p) == 4, "allocator slots count at take: %d",
             kv_pool_tokens_held(p));
    TK_CHECK(kv_pool_holds_row(p, kv_pool_k(p, s2.page, s2.slot)), "allocator slot held");
    kv_pool_slot_give(p, s2);
    TK_CHECK(kv_pool_tokens_held(p) == 3, "slot given back: %d", kv_pool_tokens_held(p));
    kv_pool_page_give(p, a);
    TK_CHECK(kv_pool_tokens_held(p) == 1, "page given back takes its two: %d",
             kv_pool_tokens_held(p));
    kv_pool_slot_give(p, s1);
    TK_CHECK(kv_pool_tokens_held(p) == 0 && kv_pool_pages_held(p) == 0, "all back");
    int b = kv_pool_page_take(p); /* a reused id starts empty */
    TK_CHECK(kv_pool_tokens_held(p) == 0 && !kv_pool_holds_row(p, kv_pool_k(p, b, 2)),
             "a reused page holds nothing");
    kv_pool_page_give(p, b);
    kv_pool_destroy(p);
}

int main(void) {
    test_pages();
    test_slots();
    test_tokens_held();
    if (tk_failures) return 1;
    printf("# kvpool: pages freed for real, ids and slots reused, memory flat under churn, "
           "tokens held counted\n");
    return 0;
}
