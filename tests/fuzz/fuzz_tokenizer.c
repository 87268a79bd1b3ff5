/* fuzz_tokenizer.c: libFuzzer target for the tokenizer's encode and decode on fixed
 * vocabularies: the fixtures of tools/make_test_gguf.py (SentencePiece and byte-level BPE
 * with the gpt-2, llama-bpe and qwen2 pre-tokenizers) and Gemma 3's real vocabulary when
 * the model is installed. The directory holding them is $RB_FUZZ_VOCAB (seeds.sh writes
 * build-fuzz/seeds/vocab). Input: one byte choosing the vocabulary and the flags, then the
 * text; the same bytes are also decoded as token ids (out of range ones must be refused). */
#include "fuzz_util.h"

#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

#define MAX_VOCABS 8
static gguf_file *files[MAX_VOCABS];
static tokenizer *toks[MAX_VOCABS];
static int n_toks;

static void load(const char *path) {
    gguf_file *g;
    tokenizer *t;
    rb_err e;
    if (gguf_open(path, &g, &e)) return;
    if (tokenizer_load(g, &t, &e)) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s: %s\n", path, e.what, e.why);
        gguf_close(g);
        return;
    }
    files[n_toks] = g;
    toks[n_toks++] = t;
    fprintf(stderr, "fuzz_tokenizer: vocabulary %s (%d tokens)\n", path, tokenizer_n_vocab(t));
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("RB_FUZZ_VOCAB");
    if (!dir) dir = "build-fuzz/seeds/vocab";
    static const char *const names[] = {"spm.gguf", "bpe.gguf", "bpe_trained_gpt2.gguf",
                                        "bpe_trained_llama3.gguf", "bpe_trained_qwen2.gguf"};
    char path[4096];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        load(path);
    }
    load("models/gemma-3-270m-q4_k_m.gguf");
    if (!n_toks) {
        fprintf(stderr, "fuzz_tokenizer: no vocabulary in %s (set RB_FUZZ_VOCAB; make fuzz writes "
                        "them)\n", dir);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const tokenizer *t = toks[data[0] % n_toks];
    int add_bos = (data[0] >> 4) & 1, special = (data[0] >> 5) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = NULL;
    int n = 0;
    rb_err e;
    if (tokenizer_encode_ex(t, text, len, add_bos, special, &ids, &n, &e) == RB_OK) {
        char *back = NULL;
        size_t blen = 0;
        int skip = add_bos && n > 0 && ids[0] == tokenizer_bos(t);
        if (tokenizer_decode(t, ids + skip, n - skip, &back, &blen, &e) != RB_OK) {
            fprintf(stderr, "decode of encoded ids refused: %s\n", e.why);
            abort();
        }
        free(back);
        for (int i = 0; i < n; i++) {
            size_t l;
            if (!tokenizer_decode_token(t, ids[i], &l)) abort(); /* encode gave a bad id */
            (void)tokenizer_is_eog(t, ids[i]);
        }
        free(ids);
    }
    /* The bytes as ids: any int32, in or out of range. */
    int n_raw = (int)(len / 4);
    if (n_raw > 0) {
        int32_t *raw = malloc((size_t)n_raw * sizeof *raw);
        memcpy(raw, text, (size_t)n_raw * sizeof *raw);
        char *s = NULL;
        if (tokenizer_decode(t, raw, n_raw, &s, NULL, &e) == RB_OK) free(s);
        for (int i = 0; i < n_raw; i++) {
            size_t l;
            (void)tokenizer_decode_token(t, raw[i], &l);
            (void)tokenizer_token_type(t, raw[i]);
        }
        free(raw);
    }
    /* The text as one token's spelling. */
    char *z = malloc(len + 1);
    memcpy(z, text, len);
    z[len] = 0;
    (void)tokenizer_find(t, z);
    free(z);
    return 0;
}
