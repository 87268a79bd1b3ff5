/* gguf.c: the GGUF v3 reader (see gguf.h). The file is mapped read-only and parsed once by
 * a bounds-checked cursor; every length, count and offset is checked against the bytes
 * left before it is used, so a hostile or truncated file is refused, never over-read. */
#define _POSIX_C_SOURCE 200809L
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { GGUF_MAX_DEPTH = 8 }; /* nested arrays deeper than this are refused */

typedef struct gguf_kv {
    char *key;               /* NUL-terminated copy */
    gguf_value_type type;
    const uint8_t *val;      /* the value's bytes inside the mapping (after its type) */
    gguf_value_type elem;    /* arrays: element type */
    uint64_t n;              /* arrays: element count */
    const uint8_t *elems;    /* arrays: first element (after type and count) */
    uint64_t *str_off;       /* string arrays: [n] offset of each element's length field */
} gguf_kv;

/* An open-addressing hash index from names to entries 0..n-1. */
typedef struct name_index {
    int *slot;          /* [cap] entry + 1, 0 = empty */
    const char **name;  /* [n] each entry's name (owned by the entry) */
    size_t cap;         /* a power of two above twice the entries; 0 before index_init */
} name_index;

struct gguf_file {
    char *path;
    const uint8_t *map;      /* [size] */
    size_t size;
    size_t alignment;
    size_t data_offset;
    int n_kv;
    gguf_kv *kv;             /* [n_kv] */
    name_index kv_index;     /* keys -> kv */
    int n_tensors;
    gguf_tensor *tensors;    /* [n_tensors] */
    name_index t_index;      /* tensor names -> tensors */
};

/* A cursor over the mapping. Each read checks the bytes left first. */
typedef struct cursor {
    const uint8_t *base;
    size_t pos, end;
} cursor;

typedef struct parse_ctx {
    const char *path;
    rb_err *e;
} parse_ctx;

static rb_status fail_at(const parse_ctx *c, size_t pos, const char *fmt, const char *detail) {
    return rb_fail(c->e, RB_EINPUT, c->path, "%s%s (at byte %zu)", fmt, detail ? detail : "",
                   pos);
}

static size_t left(const cursor *k) { return k->end - k->pos; }

static rb_status rd_bytes(const parse_ctx *c, cursor *k, void *dst, size_t n, const char *what) {
    if (left(k) < n) return fail_at(c, k->pos, "truncated: file ends inside ", what);
    memcpy(dst, k->base + k->pos, n);
    k->pos += n;
    return RB_OK;
}

static rb_status rd_u32(const parse_ctx *c, cursor *k, uint32_t *v, const char *what) {
    return rd_bytes(c, k, v, 4, what);
}

static rb_status rd_u64(const parse_ctx *c, cursor *k, uint64_t *v, const char *what) {
    return rd_bytes(c, k, v, 8, what);
}

/* A string: u64 length then bytes; the bytes stay in the mapping. */
static rb_status rd_str(const parse_ctx *c, cursor *k, gguf_str *s, const char *what) {
    uint64_t n = 0;
    size_t at = k->pos;
    rb_status st = rd_u64(c, k, &n, what);
    if (st) return st;
    if (n > left(k))
        return rb_fail(c->e, RB_EINPUT, c->path,
                       "%s has length %llu but only %zu bytes are left in the file (at byte %zu)",
                       what, (unsigned long long)n, left(k), at);
    s->s = (const char *)k->base + k->pos;
    s->n = n;
    k->pos += (size_t)n;
    return RB_OK;
}

/* Size of a fixed-size value type; 0 for string, array and unknown types. */
static size_t vt_size(uint32_t t) {
    switch (t) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *vt_name(uint32_t t) {
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32",
                                  "float32", "bool", "string", "array", "uint64", "int64",
                                  "float64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static rb_status check_bools(const parse_ctx *c, const cursor *k, size_t at, uint64_t n,
                             const char *key) {
    for (uint64_t i = 0; i < n; i++) {
        uint8_t b = k->base[at + i];
        if (b > 1)
            return rb_fail(c->e, RB_EINPUT, c->path,
                           "key '%s': bool value %u is neither 0 nor 1 (at byte %zu)", key, b,
                           at + (size_t)i);
    }
    return RB_OK;
}

/* Skip over one value of type t, checking everything inside it. */
static rb_status skip_value(const parse_ctx *c, cursor *k, uint32_t t, const char *key,
                            int depth) {
    size_t at = k->pos;
    size_t sz = vt_size(t);
    if (sz) {
        if (left(k) < sz) return fail_at(c, at, "truncated: file ends inside the value of key ", key);
        if (t == GGUF_VT_BOOL) {
            rb_status st = check_bools(c, k, at, 1, key);
            if (st) return st;
        }
        k->pos += sz;
        return RB_OK;
    }
    if (t == GGUF_VT_STRING) {
        gguf_str s;
        char what[160];
        snprintf(what, sizeof what, "the string value of key '%s'", key);
        return rd_str(c, k, &s, what);
    }
    if (t != GGUF_VT_ARRAY)
        return rb_fail(c->e, RB_EINPUT, c->path, "key '%s' has unknown value type %u (at byte %zu)",
                       key, t, at);
    if (depth >= GGUF_MAX_DEPTH)
        return rb_fail(c->e, RB_EINPUT, c->path,
                       "key '%s': arrays nested deeper than %d levels (at byte %zu)", key,
                       GGUF_MAX_DEPTH, at);
    uint32_t et = 0;
    uint64_t n = 0;
    rb_status st = rd_u32(c, k, &et, "an array's element type");
    if (!st) st = rd_u64(c, k, &n, "an array's element count");
    if (st) return st;
    size_t esz = vt_size(et);
    if (esz) {
        if (n > left(k) / esz)
            return rb_fail(c->e, RB_EINPUT, c->path,
                           "key '%s': array of %llu %s elements needs more than the %zu bytes "
                           "left in the file (at byte %zu)",
                           key, (unsigned long long)n, vt_name(et), left(k), at);
        if (et == GGUF_VT_BOOL) {
            st = check_bools(c, k, k->pos, n, key);
            if (st) return st;
        }
        k->pos += (size_t)(n * esz);
        return RB_OK;
    }
    if (et != GGUF_VT_STRING && et != GGUF_VT_ARRAY)
        return rb_fail(c->e, RB_EINPUT, c->path,
                       "key '%s': array has unknown element type %u (at byte %zu)", key, et, at);
    /* Every string or array element takes at least 8 bytes: a cheap bound first, so a huge
     * count fails at once instead of after a long walk. */
    if (n > left(k) / 8)
        return rb_fail(c->e, RB_EINPUT, c->path,
                       "key '%s': array of %llu %s elements needs more than the %zu bytes left "
                       "in the file (at byte %zu)",
                       key, (unsigned long long)n, vt_name(et), left(k), at);
    for (uint64_t i = 0; i < n; i++) {
        st = skip_value(c, k, et, key, depth + 1);
        if (st) return st;
    }
    return RB_OK;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

static void index_init(name_index *x, int n) {
    x->cap = 16;
    while (x->cap < (size_t)n * 2 + 1) x->cap *= 2;
    x->slot = rb_calloc(x->cap, sizeof *x->slot);
    x->name = rb_calloc((size_t)(n > 0 ? n : 1), sizeof *x->name);
}

static void index_free(name_index *x) {
    free(x->slot);
    free(x->name);
}

/* The entry named `name`, or -1. */
static int index_find(const name_index *x, const char *name) {
    if (!name || !x->cap) return -1;
    size_t mask = x->cap - 1, i = hash_bytes(name, strlen(name)) & mask;
    for (; x->slot[i]; i = (i + 1) & mask)
        if (!strcmp(x->name[x->slot[i] - 1], name)) return x->slot[i] - 1;
    return -1;
}

/* Index entry i under `name` (which must outlive the index); a name already taken fails
 * with "duplicate <noun> '<name>'", the noun saying what the names are. */
static rb_status index_add(const parse_ctx *c, name_index *x, int i, const char *name,
                           const char *noun, size_t at) {
    if (index_find(x, name) >= 0)
        return rb_fail(c->e, RB_EINPUT, c->path, "duplicate %s '%s' (at byte %zu)", noun, name, at);
    size_t mask = x->cap - 1, h = hash_bytes(name, strlen(name)) & mask;
    while (x->slot[h]) h = (h + 1) & mask;
    x->slot[h] = i + 1;
    x->name[i] = name;
    return RB_OK;
}

static int kv_lookup(const gguf_file *g, const char *key) {
    return g ? index_find(&g->kv_index, key) : -1;
}

/* A string that can serve as a name: not empty, shorter than max bytes, no NUL inside. */
static int name_valid(gguf_str s, size_t max) {
    return s.n > 0 && s.n < max && !memchr(s.s, 0, (size_t)s.n);
}

/* Copy a valid name, NUL-terminated, into dst (at least s.n + 1 bytes). */
static void name_copy(char *dst, gguf_str s) {
    memcpy(dst, s.s, (size_t)s.n);
    dst[s.n] = 0;
}

/* An array value (already validated by skip_value) at val_at: its element type, count,
 * first element and, for strings, the offset of each element. */
static void kv_index_array(gguf_kv *kv, const uint8_t *base, size_t val_at) {
    uint32_t et;
    memcpy(&et, base + val_at, 4);
    memcpy(&kv->n, base + val_at + 4, 8);
    kv->elem = (gguf_value_type)et;
    kv->elems = base + val_at + 12;
    if (et != GGUF_VT_STRING) return;
    kv->str_off = rb_malloc((size_t)kv->n * sizeof *kv->str_off);
    size_t p = val_at + 12;
    for (uint64_t j = 0; j < kv->n; j++) {
        uint64_t len;
        memcpy(&len, base + p, 8);
        kv->str_off[j] = p;
        p += 8 + (size_t)len;
    }
}

static rb_status parse_kvs(gguf_file *g, const parse_ctx *c, cursor *k) {
    index_init(&g->kv_index, g->n_kv);
    for (int i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        gguf_str key;
        size_t at = k->pos;
        rb_status st = rd_str(c, k, &key, "a metadata key");
        if (st) return st;
        if (!name_valid(key, SIZE_MAX))
            return rb_fail(c->e, RB_EINPUT, c->path,
                           "metadata key %d is empty or contains a NUL byte (at byte %zu)", i, at);
        kv->key = rb_malloc((size_t)key.n + 1);
        name_copy(kv->key, key);
        uint32_t t = 0;
        st = index_add(c, &g->kv_index, i, kv->key, "metadata key", at);
        if (!st) st = rd_u32(c, k, &t, "a metadata value type");
        if (st) return st;
        kv->type = (gguf_value_type)t;
        kv->val = k->base + k->pos;
        size_t val_at = k->pos;
        st = skip_value(c, k, t, kv->key, 0);
        if (st) return st;
        if (t == GGUF_VT_ARRAY) kv_index_array(kv, k->base, val_at);
    }
    return RB_OK;
}

/* a * b without overflow past INT64_MAX; 0 on overflow. */
static int mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a && b > (uint64_t)INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

static rb_status parse_tensors(gguf_file *g, const parse_ctx *c, cursor *k, uint64_t *offsets) {
    index_init(&g->t_index, g->n_tensors);
    for (int i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        gguf_str name = {0}; /* gcc -O3: may be used uninitialized (it is not) */
        size_t at = k->pos;
        rb_status st = rd_str(c, k, &name, "a tensor name");
        if (st) return st;
        if (!name_valid(name, sizeof t->name))
            return rb_fail(c->e, RB_EINPUT, c->path,
                           "tensor %d: name is empty, %zu bytes or longer, or contains a NUL "
                           "byte (at byte %zu)",
                           i, sizeof t->name, at);
        name_copy(t->name, name);
        uint32_t n_dims = 0;
        st = index_add(c, &g->t_index, i, t->name, "tensor name", at);
        if (!st) st = rd_u32(c, k, &n_dims, "a tensor's dimension count");
        if (st) return st;
        if (n_dims < 1 || n_dims > 4)
            return rb_fail(c->e, RB_EINPUT, c->path,
                           "tensor '%s' has %u dimensions (1 to 4 are allowed)", t->name, n_dims);
        t->n_dims = (int)n_dims;
        uint64_t n_elems = 1;
        for (int d = 0; d < 4; d++) {
            uint64_t ne = 1;
            if (d < t->n_dims) {
                st = rd_u64(c, k, &ne, "a tensor's shape");
                if (st) return st;
            }
            if (ne == 0 || ne > (uint64_t)INT64_MAX || !mul_ok(n_elems, ne, &n_elems))
                return rb_fail(c->e, RB_EINPUT, c->path,
                               "tensor '%s': dimension %d is %llu (empty or too large)", t->name,
                               d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
        }
        uint32_t type = 0;
        st = rd_u32(c, k, &type, "a tensor's type");
        if (!st) st = rd_u64(c, k, &offsets[i], "a tensor's offset");
        if (st) return st;
        int blk = ggml_block_elems((ggml_type)type);
        size_t blk_bytes = ggml_block_bytes((ggml_type)type);
        if (blk <= 0 || blk_bytes == 0)
            return rb_fail(c->e, RB_EINPUT, c->path, "tensor '%s' has unknown type %u", t->name,
                           type);
        t->type = (ggml_type)type;
        if (t->ne[0] % blk)
            return rb_fail(c->e, RB_EINPUT, c->path,
                           "tensor '%s': row length %lld is not a multiple of %s's block of %d",
                           t->name, (long long)t->ne[0], ggml_type_name(t->type), blk);
        uint64_t nbytes = (uint64_t)(t->ne[0] / blk);
        if (!mul_ok(nbytes, blk_bytes, &nbytes) || !mul_ok(nbytes, (uint64_t)t->ne[1], &nbytes) ||
            !mul_ok(nbytes, (uint64_t)t->ne[2], &nbytes) ||
            !mul_ok(nbytes, (uint64_t)t->ne[3], &nbytes) || nbytes > SIZE_MAX)
            return rb_fail(c->e, RB_EINPUT, c->path, "tensor '%s' is too large", t->name);
        t->nbytes = (size_t)nbytes;
    }
    return RB_OK;
}

/* Place every tensor inside the data section: aligned, inside the file, not overlapping. */
static rb_status place_tensors(gguf_file *g, const parse_ctx *c, const uint64_t *offsets) {
    int *order = rb_malloc((size_t)g->n_tensors * sizeof *order);
    rb_status st = RB_OK;
    for (int i = 0; i < g->n_tensors && !st; i++) {
        gguf_tensor *t = &g->tensors[i];
        uint64_t off = offsets[i];
        size_t room = g->size - g->data_offset;
        if (off % g->alignment)
            st = rb_fail(c->e, RB_EINPUT, c->path,
                         "tensor '%s': data offset %llu is not a multiple of the alignment %zu",
                         t->name, (unsigned long long)off, g->alignment);
        else if (off > room || t->nbytes > room - off)
            st = rb_fail(c->e, RB_EINPUT, c->path,
                         "tensor '%s': data [%llu, +%zu) runs past the end of the file "
                         "(data section is %zu bytes)",
                         t->name, (unsigned long long)off, t->nbytes, room);
        else
            t->data = g->map + g->data_offset + off;
        order[i] = i;
    }
    if (!st && g->n_tensors > 1) {
        /* Insertion sort by offset would be quadratic on large models; a shell sort is
         * enough here and needs no comparator context. */
        for (int gap = g->n_tensors / 2; gap > 0; gap /= 2)
            for (int i = gap; i < g->n_tensors; i++)
                for (int j = i; j >= gap && offsets[order[j - gap]] > offsets[order[j]]; j -= gap) {
                    int tmp = order[j];
                    order[j] = order[j - gap];
                    order[j - gap] = tmp;
                }
        for (int i = 1; i < g->n_tensors && !st; i++) {
            const gguf_tensor *a = &g->tensors[order[i - 1]], *b = &g->tensors[order[i]];
            if (offsets[order[i - 1]] + a->nbytes > offsets[order[i]])
                st = rb_fail(c->e, RB_EINPUT, c->path, "tensors '%s' and '%s' overlap", a->name,
                             b->name);
        }
    }
    free(order);
    return st;
}

static rb_status parse(gguf_file *g, const parse_ctx *c) {
    cursor k = {g->map, 0, g->size};
    char magic[4];
    uint32_t version = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    rb_status st = rd_bytes(c, &k, magic, 4, "the magic");
    if (st) return st;
    if (memcmp(magic, "GGUF", 4))
        return rb_fail(c->e, RB_EINPUT, c->path, "not a GGUF file (magic is not \"GGUF\")");
    st = rd_u32(c, &k, &version, "the version");
    if (st) return st;
    if (version == 1 || version == 2)
        return rb_fail(c->e, RB_EINPUT, c->path,
                       "GGUF version %u is not supported (only version 3); convert the model "
                       "again with a current llama.cpp",
                       version);
    if (version == 0x03000000u)
        return rb_fail(c->e, RB_EINPUT, c->path,
                       "big-endian GGUF is not supported (only little-endian version 3)");
    if (version != 3)
        return rb_fail(c->e, RB_EINPUT, c->path, "unknown GGUF version %u (only 3 is supported)",
                       version);
    st = rd_u64(c, &k, &n_tensors, "the tensor count");
    if (!st) st = rd_u64(c, &k, &n_kv, "the metadata count");
    if (st) return st;
    /* A key/value takes at least 8+1+4+1 bytes and a tensor info 8+1+4+8+4+8: bound the
     * counts by the file before allocating anything for them. */
    if (n_kv > left(&k) / 14 || n_kv > INT32_MAX)
        return rb_fail(c->e, RB_EINPUT, c->path,
                       "metadata count %llu cannot fit in the %zu bytes left in the file",
                       (unsigned long long)n_kv, left(&k));
    if (n_tensors > left(&k) / 33 || n_tensors > INT32_MAX)
        return rb_fail(c->e, RB_EINPUT, c->path,
                       "tensor count %llu cannot fit in the %zu bytes left in the file",
                       (unsigned long long)n_tensors, left(&k));
    g->n_kv = (int)n_kv;
    g->kv = rb_calloc((size_t)g->n_kv, sizeof *g->kv);
    st = parse_kvs(g, c, &k);
    if (st) return st;

    g->alignment = 32;
    int ai = kv_lookup(g, "general.alignment");
    if (ai >= 0) {
        uint32_t a = 0;
        if (g->kv[ai].type != GGUF_VT_UINT32)
            return rb_fail(c->e, RB_EINPUT, c->path, "general.alignment is %s, not uint32",
                           vt_name(g->kv[ai].type));
        memcpy(&a, g->kv[ai].val, 4);
        if (a == 0 || (a & (a - 1)) || a > (1u << 30))
            return rb_fail(c->e, RB_EINPUT, c->path,
                           "general.alignment %u is not a power of two up to 2^30", a);
        g->alignment = a;
    }

    g->n_tensors = (int)n_tensors;
    g->tensors = rb_calloc((size_t)g->n_tensors, sizeof *g->tensors);
    uint64_t *offsets = rb_calloc((size_t)g->n_tensors, sizeof *offsets);
    st = parse_tensors(g, c, &k, offsets);
    if (!st) {
        size_t pad = (g->alignment - k.pos % g->alignment) % g->alignment;
        g->data_offset = k.pos + pad;
        if (g->n_tensors > 0 && pad > left(&k))
            st = rb_fail(c->e, RB_EINPUT, c->path,
                         "truncated: file ends before the tensor data section at byte %zu",
                         g->data_offset);
        else if (g->data_offset > g->size)
            g->data_offset = g->size; /* no tensors and no padding: an empty data section */
    }
    if (!st) st = place_tensors(g, c, offsets);
    free(offsets);
    return st;
}

rb_status gguf_open(const char *path, gguf_file **out, rb_err *e) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rb_fail(e, RB_EINPUT, path, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return rb_fail(e, RB_EINPUT, path, "cannot stat: %s", strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return rb_fail(e, RB_EINPUT, path, "not a regular file");
    }
    if (sb.st_size < 4) {
        close(fd);
        return rb_fail(e, RB_EINPUT, path, "truncated: %lld bytes is too short for a GGUF file",
                       (long long)sb.st_size);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (map == MAP_FAILED) return rb_fail(e, RB_EINPUT, path, "cannot map: %s", strerror(err));
    gguf_file *g = rb_calloc(1, sizeof *g);
    g->path = rb_strdup(path);
    g->map = map;
    g->size = (size_t)sb.st_size;
    parse_ctx c = {g->path, e};
    rb_status st = parse(g, &c);
    if (st) {
        gguf_close(g);
        return st;
    }
    *out = g;
    return RB_OK;
}

void gguf_close(gguf_file *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str_off);
    }
    free(g->kv);
    index_free(&g->kv_index);
    free(g->tensors);
    index_free(&g->t_index);
    if (g->map) munmap((void *)g->map, g->size);
    free(g->path);
    free(g);
}

/* ---- metadata ---- */

int gguf_has_key(const gguf_file *g, const char *key) { return kv_lookup(g, key) >= 0; }

/* Decode one integer of type t at p. Returns 0 when t is not an integer type or the value
 * does not fit an int64. */
static int read_int(gguf_value_type t, const uint8_t *p, int64_t *out) {
    switch (t) {
    case GGUF_VT_UINT8: *out = p[0]; return 1;
    case GGUF_VT_INT8: *out = (int8_t)p[0]; return 1;
    case GGUF_VT_UINT16: { uint16_t v; memcpy(&v, p, 2); *out = v; return 1; }
    case GGUF_VT_INT16: { int16_t v; memcpy(&v, p, 2); *out = v; return 1; }
    case GGUF_VT_UINT32: { uint32_t v; memcpy(&v, p, 4); *out = v; return 1; }
    case GGUF_VT_INT32: { int32_t v; memcpy(&v, p, 4); *out = v; return 1; }
    case GGUF_VT_INT64: { int64_t v; memcpy(&v, p, 8); *out = v; return 1; }
    case GGUF_VT_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)v;
        return 1;
    }
    default: return 0;
    }
}

/* Decode one float32 or float64 at p as a double. Returns 0 for other types. */
static int read_float(gguf_value_type t, const uint8_t *p, double *out) {
    if (t == GGUF_VT_FLOAT32) {
        float f;
        memcpy(&f, p, 4);
        *out = f;
        return 1;
    }
    if (t == GGUF_VT_FLOAT64) {
        memcpy(out, p, 8);
        return 1;
    }
    return 0;
}

#define VT(t) (1u << (t))
#define VT_INTS (VT(GGUF_VT_UINT8) | VT(GGUF_VT_INT8) | VT(GGUF_VT_UINT16) | VT(GGUF_VT_INT16) | \
                 VT(GGUF_VT_UINT32) | VT(GGUF_VT_INT32) | VT(GGUF_VT_UINT64) | VT(GGUF_VT_INT64))

/* The entry of `key` when its value type is one of `types` (VT bits); else RB_EINPUT naming
 * the key: missing, or "<type>, expected <want>". */
static rb_status kv_get(const gguf_file *g, const char *key, unsigned types, const char *want,
                        const gguf_kv **out, rb_err *e) {
    int i = kv_lookup(g, key);
    if (i < 0)
        return rb_fail(e, RB_EINPUT, g ? g->path : "gguf", "metadata key '%s' is missing", key);
    const gguf_kv *kv = &g->kv[i];
    if (!(types & VT(kv->type)))
        return rb_fail(e, RB_EINPUT, g->path, "metadata key '%s' is %s, expected %s", key,
                       vt_name(kv->type), want);
    *out = kv;
    return RB_OK;
}

rb_status gguf_get_int(const gguf_file *g, const char *key, int64_t *out, rb_err *e) {
    const gguf_kv *kv = NULL; /* set when the lookup succeeds; gcc -O3 cannot tell */
    rb_status st = kv_get(g, key, VT_INTS, "an integer", &kv, e);
    if (st) return st;
    if (!read_int(kv->type, kv->val, out))
        return rb_fail(e, RB_EINPUT, g->path, "metadata key '%s' does not fit a signed 64-bit "
                       "integer", key);
    return RB_OK;
}

rb_status gguf_get_float(const gguf_file *g, const char *key, double *out, rb_err *e) {
    const gguf_kv *kv = NULL; /* set when the lookup succeeds; gcc -O3 cannot tell */
    rb_status st = kv_get(g, key, VT(GGUF_VT_FLOAT32) | VT(GGUF_VT_FLOAT64), "float32 or float64",
                          &kv, e);
    if (!st) read_float(kv->type, kv->val, out);
    return st;
}

rb_status gguf_get_bool(const gguf_file *g, const char *key, int *out, rb_err *e) {
    const gguf_kv *kv = NULL; /* set when the lookup succeeds; gcc -O3 cannot tell */
    rb_status st = kv_get(g, key, VT(GGUF_VT_BOOL), "bool", &kv, e);
    if (!st) *out = kv->val[0] != 0;
    return st;
}

rb_status gguf_get_str(const gguf_file *g, const char *key, gguf_str *out, rb_err *e) {
    const gguf_kv *kv = NULL; /* set when the lookup succeeds; gcc -O3 cannot tell */
    rb_status st = kv_get(g, key, VT(GGUF_VT_STRING), "string", &kv, e);
    if (st) return st;
    memcpy(&out->n, kv->val, 8);
    out->s = (const char *)kv->val + 8;
    return RB_OK;
}

rb_status gguf_get_array(const gguf_file *g, const char *key, gguf_value_type *elem_type,
                         uint64_t *n, rb_err *e) {
    const gguf_kv *kv = NULL; /* set when the lookup succeeds; gcc -O3 cannot tell */
    rb_status st = kv_get(g, key, VT(GGUF_VT_ARRAY), "array", &kv, e);
    if (st) return st;
    *elem_type = kv->elem;
    *n = kv->n;
    return RB_OK;
}

gguf_str gguf_array_str(const gguf_file *g, const char *key, uint64_t i) {
    gguf_str s = {NULL, 0};
    int k = kv_lookup(g, key);
    if (k < 0) return s;
    const gguf_kv *kv = &g->kv[k];
    if (kv->type != GGUF_VT_ARRAY || kv->elem != GGUF_VT_STRING || i >= kv->n) return s;
    memcpy(&s.n, g->map + kv->str_off[i], 8);
    s.s = (const char *)g->map + kv->str_off[i] + 8;
    return s;
}

double gguf_array_num(const gguf_file *g, const char *key, uint64_t i) {
    int k = kv_lookup(g, key);
    if (k < 0) return NAN;
    const gguf_kv *kv = &g->kv[k];
    size_t sz = vt_size(kv->elem);
    if (kv->type != GGUF_VT_ARRAY || !sz || i >= kv->n) return NAN;
    const uint8_t *p = kv->elems + i * sz;
    int64_t v;
    double d;
    if (read_int(kv->elem, p, &v)) return (double)v;
    if (read_float(kv->elem, p, &d)) return d;
    switch (kv->elem) {
    case GGUF_VT_UINT64: { uint64_t u; memcpy(&u, p, 8); return (double)u; }
    case GGUF_VT_BOOL: return p[0] != 0;
    default: return NAN;
    }
}

int gguf_n_kv(const gguf_file *g) { return g ? g->n_kv : 0; }

const char *gguf_key_at(const gguf_file *g, int i) {
    return g && i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

gguf_value_type gguf_key_type(const gguf_file *g, int i) {
    return g && i >= 0 && i < g->n_kv ? g->kv[i].type : (gguf_value_type)-1;
}

const char *gguf_path(const gguf_file *g) { return g->path; }
size_t gguf_file_size(const gguf_file *g) { return g->size; }
size_t gguf_alignment(const gguf_file *g) { return g->alignment; }
size_t gguf_data_offset(const gguf_file *g) { return g->data_offset; }

/* ---- tensors ---- */

int gguf_n_tensors(const gguf_file *g) { return g ? g->n_tensors : 0; }

const gguf_tensor *gguf_tensor_at(const gguf_file *g, int i) {
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    int i = g ? index_find(&g->t_index, name) : -1;
    return i < 0 ? NULL : &g->tensors[i];
}

/* ---- summary ---- */

static void print_value(FILE *f, const gguf_file *g, const char *label, const char *key) {
    int i = kv_lookup(g, key);
    if (i < 0) return;
    const gguf_kv *kv = &g->kv[i];
    int64_t v;
    double d;
    fprintf(f, "  %-28s ", label);
    if (read_int(kv->type, kv->val, &v)) {
        fprintf(f, "%lld\n", (long long)v);
    } else if (read_float(kv->type, kv->val, &d)) {
        fprintf(f, "%g\n", d);
    } else if (kv->type == GGUF_VT_BOOL) {
        fprintf(f, "%s\n", kv->val[0] ? "true" : "false");
    } else if (kv->type == GGUF_VT_STRING) {
        uint64_t n;
        memcpy(&n, kv->val, 8);
        fprintf(f, "%.*s\n", (int)(n > 200 ? 200 : n), (const char *)kv->val + 8);
    } else if (kv->type == GGUF_VT_ARRAY) {
        fprintf(f, "[%llu x %s]\n", (unsigned long long)kv->n, vt_name(kv->elem));
    } else {
        fprintf(f, "?\n");
    }
}

void gguf_print_summary(FILE *f, const gguf_file *g) {
    gguf_str arch = {"", 0};
    gguf_get_str(g, "general.architecture", &arch, NULL);
    fprintf(f, "file: %s\n", g->path);
    fprintf(f, "  %-28s GGUF v3, %zu bytes, %d metadata keys, alignment %zu\n", "format", g->size,
            g->n_kv, g->alignment);
    print_value(f, g, "architecture", "general.architecture");
    print_value(f, g, "name", "general.name");
    print_value(f, g, "size label", "general.size_label");
    print_value(f, g, "file type", "general.file_type");

    int n_types = GGML_T_BF16 + 1;
    int count[GGML_T_BF16 + 1] = {0};
    size_t bytes[GGML_T_BF16 + 1] = {0};
    int64_t n_params = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if ((int)t->type >= 0 && (int)t->type < n_types) {
            count[t->type]++;
            bytes[t->type] += t->nbytes;
        }
        n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    fprintf(f, "tensors: %d, %.1f M parameters, %zu bytes of data\n", g->n_tensors,
            (double)n_params / 1e6, g->size - g->data_offset);
    for (int t = 0; t < n_types; t++)
        if (count[t])
            fprintf(f, "  %-8s %5d tensors %12zu bytes\n", ggml_type_name((ggml_type)t),
                    count[t], bytes[t]);

    static const char *const hyper[][2] = {
        {"context length", "context_length"},
        {"embedding length", "embedding_length"},
        {"layers", "block_count"},
        {"feed-forward length", "feed_forward_length"},
        {"query heads", "attention.head_count"},
        {"kv heads", "attention.head_count_kv"},
        {"key length", "attention.key_length"},
        {"value length", "attention.value_length"},
        {"sliding window", "attention.sliding_window"},
        {"rms norm epsilon", "attention.layer_norm_rms_epsilon"},
        {"rope freq base", "rope.freq_base"},
        {"rope dimensions", "rope.dimension_count"},
        {"vocab size", "vocab_size"},
    };
    if (arch.n > 0 && arch.n < 64) {
        fprintf(f, "hyperparameters (%.*s.*):\n", (int)arch.n, arch.s);
        for (size_t i = 0; i < sizeof hyper / sizeof hyper[0]; i++) {
            char key[128];
            snprintf(key, sizeof key, "%.*s.%s", (int)arch.n, arch.s, hyper[i][1]);
            print_value(f, g, hyper[i][0], key);
        }
    }
    if (gguf_has_key(g, "tokenizer.ggml.model")) {
        fprintf(f, "tokenizer:\n");
        print_value(f, g, "model", "tokenizer.ggml.model");
        print_value(f, g, "pre-tokenizer", "tokenizer.ggml.pre");
        print_value(f, g, "tokens", "tokenizer.ggml.tokens");
        print_value(f, g, "merges", "tokenizer.ggml.merges");
        print_value(f, g, "bos id", "tokenizer.ggml.bos_token_id");
        print_value(f, g, "eos id", "tokenizer.ggml.eos_token_id");
        print_value(f, g, "add bos", "tokenizer.ggml.add_bos_token");
        print_value(f, g, "add space prefix", "tokenizer.ggml.add_space_prefix");
    }
}
