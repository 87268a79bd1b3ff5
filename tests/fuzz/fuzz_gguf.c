/* fuzz_gguf.c: libFuzzer target for the GGUF reader (gguf_open's validation, every metadata
 * getter, the tensor table) and, when the file opens, the tokenizer's loader and one encode
 * and decode. Seeds: tools/make_test_gguf.py and tools/make_tiny_models.py (seeds.sh). */
#include "fuzz_util.h"

#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) devnull = fopen("/dev/null", "w");
    char path[64];
    int fd = fuzz_file(data, size, path);
    gguf_file *g = NULL;
    rb_err e;
    if (gguf_open(path, &g, &e) == RB_OK) {
        gguf_print_summary(devnull, g);
        for (int i = 0; i < gguf_n_kv(g); i++) {
            const char *key = gguf_key_at(g, i);
            int64_t iv;
            double dv;
            int bv;
            gguf_str sv;
            gguf_value_type et;
            uint64_t n;
            (void)gguf_get_int(g, key, &iv, &e);
            (void)gguf_get_float(g, key, &dv, &e);
            (void)gguf_get_bool(g, key, &bv, &e);
            if (gguf_get_str(g, key, &sv, &e) == RB_OK && sv.n) (void)(volatile char)sv.s[sv.n - 1];
            if (gguf_get_array(g, key, &et, &n, &e) == RB_OK && n) {
                if (et == GGUF_VT_STRING) {
                    gguf_str s = gguf_array_str(g, key, n - 1);
                    if (s.n) (void)(volatile char)s.s[s.n - 1];
                } else {
                    (void)gguf_array_num(g, key, n - 1);
                }
            }
        }
        for (int i = 0; i < gguf_n_tensors(g); i++) {
            const gguf_tensor *t = gguf_tensor_at(g, i);
            if (t->nbytes) (void)(volatile uint8_t)((const uint8_t *)t->data)[t->nbytes - 1];
            (void)gguf_find_tensor(g, t->name);
        }
        tokenizer *tok = NULL;
        if (tokenizer_load(g, &tok, &e) == RB_OK) {
            int32_t *ids = NULL;
            int n = 0;
            const char *text = "Hello, world! 12 + 30 = 42. <start_of_turn>user\n\xc3\xa9\xe4\xb8\xad";
            if (tokenizer_encode_ex(tok, text, strlen(text), 1, 1, &ids, &n, &e) == RB_OK) {
                char *back = NULL;
                if (tokenizer_decode(tok, ids, n, &back, NULL, &e) == RB_OK) free(back);
                free(ids);
            }
            tokenizer_destroy(tok);
        }
        gguf_close(g);
    }
    close(fd);
    return 0;
}
