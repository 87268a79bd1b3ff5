/* h5tree.h: builds an HDF5 file from fuzz input read as a small program, so that the trace
 * and results readers are fuzzed on files libhdf5 itself wrote (raw-byte fuzzing of HDF5
 * mostly finds libhdf5's own bugs: tests/fuzz/README.md). tests/fuzz/h5tree.py turns real
 * files into such programs (the seeds) and states the encoding:
 *   op 0 NAME             enter group NAME (created when missing)
 *   op 1                  back to the parent group
 *   op 2 NAME T VALUE     attribute: T 0 int64, 1 float64, 2 string (u8 length + bytes),
 *                         3 int32 array (u8 n + n int32), 4 float32
 *   op 3 NAME T RANK DIMS dataset: T 0 f16, 1 f32, 2 f64, 3 i32, 4 i64, 5 u8, 6 string
 *                         (+128: no data, never written: reads give zeros); RANK 0..4,
 *                         each dim a u32; then, when the dataset has at most
 *                         H5TREE_MAX_ELEMS elements, its bytes (element size each, zeros
 *                         past the input's end; strings: one u8 length + bytes each), else
 *                         nothing: chunked and never written (declared far beyond storage)
 * NAME is one byte: an index into h5tree_names, or 255 then a u8 length and the bytes.
 * Every number is little-endian. Unknown ops end the program. */
#ifndef H5TREE_H
#define H5TREE_H
#include <hdf5.h>
#include <string.h>

#include "h5util.h"

#define H5TREE_MAX_ELEMS 65536
#define H5TREE_DEPTH 8

static const char *const h5tree_names[] = {
    /* traces */
    "format", "format_version", "source", "model", "n_layers", "n_q_heads", "n_kv_heads",
    "head_dim", "n_prefill", "n_tokens", "attn_scale", "layers", "sliding_window", "q", "k", "v",
    "layer_000", "layer_001", "layer_002", "layer_003", "truth", "milestones", "phoenix",
    "tokens", "text", "git_commit", "raasbench_version",
    /* results */
    "runs", "summary", "config", "trace", "trace_sha256", "compiler", "libraries", "created",
    "host", "policy", "budget", "page_size", "dense_layers", "latency_every", "params",
    "sparse_layers", "n_tokens", "step", "recall", "out_err", "attended", "recall_head",
    "out_err_head", "kv_bytes", "meta_bytes", "latency_ns", "token_match", "kl",
    "token_latency_ns", "selection", "dense_L16", "h2o_L16", "streamingllm_L8", "T",
    "raasbench-trace", "raasbench-results",
};
#define H5TREE_N_NAMES (int)(sizeof h5tree_names / sizeof h5tree_names[0])

typedef struct h5tree_in {
    const uint8_t *p, *end;
} h5tree_in;

static inline int h5tree_more(const h5tree_in *in) { return in->p < in->end; }
static inline uint8_t h5tree_u8(h5tree_in *in) { return in->p < in->end ? *in->p++ : 0; }
static inline void h5tree_bytes(h5tree_in *in, void *dst, size_t n) {
    size_t have = (size_t)(in->end - in->p);
    size_t k = n < have ? n : have;
    memcpy(dst, in->p, k);
    memset((char *)dst + k, 0, n - k);
    in->p += k;
}
static inline uint32_t h5tree_u32(h5tree_in *in) {
    uint8_t b[4];
    h5tree_bytes(in, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline void h5tree_name(h5tree_in *in, char buf[256]) {
    uint8_t i = h5tree_u8(in);
    if (i == 255) {
        uint8_t n = h5tree_u8(in);
        h5tree_bytes(in, buf, n);
        buf[n] = 0;
        for (int j = 0; j < n; j++)
            if (!buf[j] || buf[j] == '/' || buf[j] == '.') buf[j] = '_';
        if (!n) strcpy(buf, "_");
    } else {
        strcpy(buf, h5tree_names[i % H5TREE_N_NAMES]);
    }
}

static inline hid_t h5tree_type(int t) {
    switch (t) {
    case 0: return H5Tcopy(h5_type_f16());
    case 1: return H5Tcopy(H5T_IEEE_F32LE);
    case 2: return H5Tcopy(H5T_IEEE_F64LE);
    case 3: return H5Tcopy(H5T_STD_I32LE);
    case 4: return H5Tcopy(H5T_STD_I64LE);
    case 5: return H5Tcopy(H5T_STD_U8LE);
    default: return h5_type_vlen_str();
    }
}

static inline void h5tree_attr(hid_t loc, const char *name, h5tree_in *in) {
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    int t = h5tree_u8(in) % 5;
    if (t == 0) {
        int64_t v;
        h5tree_bytes(in, &v, 8);
        h5_attr_write_i64(loc, name, v);
    } else if (t == 1) {
        double v;
        h5tree_bytes(in, &v, 8);
        h5_attr_write_f64(loc, name, v);
    } else if (t == 2) {
        char s[256];
        uint8_t n = h5tree_u8(in);
        h5tree_bytes(in, s, n);
        s[n] = 0;
        h5_attr_write_str(loc, name, s);
    } else if (t == 3) {
        int32_t v[255];
        uint8_t n = h5tree_u8(in);
        h5tree_bytes(in, v, (size_t)n * 4);
        if (n) h5_attr_write_i32_array(loc, name, v, n);
    } else {
        float v;
        h5tree_bytes(in, &v, 4);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            H5Awrite(a, H5T_NATIVE_FLOAT, &v);
            H5Aclose(a);
        }
        H5Sclose(sp);
    }
}

static inline void h5tree_dataset(hid_t loc, const char *name, h5tree_in *in) {
    uint8_t tb = h5tree_u8(in);
    int t = (tb & 127) % 7, rank = h5tree_u8(in) % 5, nodata = tb & 128;
    hsize_t dims[4], maxd[4], chunk[4];
    double n = 1;
    for (int i = 0; i < rank; i++) {
        dims[i] = h5tree_u32(in);
        maxd[i] = H5S_UNLIMITED;
        chunk[i] = dims[i] < 64 ? (dims[i] ? dims[i] : 1) : 64;
        n *= (double)dims[i];
    }
    if (H5Lexists(loc, name, H5P_DEFAULT) > 0) H5Ldelete(loc, name, H5P_DEFAULT);
    hid_t ty = h5tree_type(t);
    int small = n <= H5TREE_MAX_ELEMS;
    hid_t sp = H5Screate_simple(rank, dims, small ? NULL : maxd);
    if (rank == 0) {
        H5Sclose(sp);
        sp = H5Screate(H5S_SCALAR);
    }
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (!small) H5Pset_chunk(dcpl, rank, chunk);
    hid_t d = H5Dcreate2(loc, name, ty, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d >= 0 && small && !nodata) {
        size_t ne = (size_t)n;
        if (t == 6) {
            char **s = calloc(ne ? ne : 1, sizeof *s);
            for (size_t i = 0; i < ne; i++) {
                uint8_t len = h5tree_more(in) ? h5tree_u8(in) : 0;
                s[i] = malloc((size_t)len + 1);
                h5tree_bytes(in, s[i], len);
                s[i][len] = 0;
            }
            hid_t x = h5_xfer(ne, sizeof *s);
            H5Dwrite(d, ty, H5S_ALL, H5S_ALL, x, s);
            H5Pclose(x);
            for (size_t i = 0; i < ne; i++) free(s[i]);
            free(s);
        } else {
            size_t es = H5Tget_size(ty);
            void *buf = malloc(ne * es + 1);
            h5tree_bytes(in, buf, ne * es);
            hid_t x = h5_xfer(ne, es);
            H5Dwrite(d, ty, H5S_ALL, H5S_ALL, x, buf);
            H5Pclose(x);
            free(buf);
        }
    }
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(ty);
}

/* Builds the file at path from the program in data; 0 on success. */
static inline int h5tree_build(const char *path, const uint8_t *data, size_t size) {
    h5_quiet();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t stack[H5TREE_DEPTH + 1];
    int depth = 0;
    stack[0] = f;
    h5tree_in in = {data, data + size};
    char name[256];
    while (h5tree_more(&in)) {
        uint8_t op = h5tree_u8(&in);
        if (op == 0) {
            h5tree_name(&in, name);
            if (depth == H5TREE_DEPTH) continue;
            hid_t loc = stack[depth];
            hid_t g = H5Lexists(loc, name, H5P_DEFAULT) > 0
                          ? H5Gopen2(loc, name, H5P_DEFAULT) /* fails on a dataset */
                          : H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g >= 0) stack[++depth] = g;
        } else if (op == 1) {
            if (depth > 0) H5Gclose(stack[depth--]);
        } else if (op == 2) {
            h5tree_name(&in, name);
            h5tree_attr(stack[depth], name, &in);
        } else if (op == 3) {
            h5tree_name(&in, name);
            h5tree_dataset(stack[depth], name, &in);
        } else {
            break;
        }
    }
    while (depth > 0) H5Gclose(stack[depth--]);
    H5Fclose(f);
    return 0;
}
#endif
