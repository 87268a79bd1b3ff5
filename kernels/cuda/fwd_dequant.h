/* fwd_dequant.h: the GGUF block formats dequantized 32 elements at a time, as __host__
 * __device__ code that also compiles as C11: the GPU matrix-vector kernels
 * (kernels/cuda/fwd_cuda.cu) call it on the device, and tests/test_fwd_dequant.c checks it on
 * the CPU, bit for bit, against quant_dequant_row_ref for every format quant_supported()
 * takes. Only byte reads: a caller may hand it any byte address (the kernels stage a row's
 * bytes in shared memory with 16-byte loads and dequantize from there).
 *
 * A row of `cols` elements is cut into chunks of QD_CHUNK = 32 consecutive elements (the
 * last one shorter only for the float formats, whose cols need not be a multiple of 32).
 * Chunk c lives in one block: qd_chunk_at gives that block's byte offset in the row and the
 * chunk's index inside it (K formats: 8 chunks per 256-element block; 32-element formats:
 * the block itself; float formats: the chunk's first element). Every product is rounded on
 * its own (no fused multiply-add) so the device gives the reference's floats exactly. */
#ifndef FWD_DEQUANT_H
#define FWD_DEQUANT_H

#include <stdint.h>

#ifdef __CUDACC__
#define QD_HD __host__ __device__
#else
#define QD_HD
#endif

/* a * b and a - b, each rounded once, never contracted into an fma */
#ifdef __CUDA_ARCH__
#define QD_MUL(a, b) __fmul_rn((a), (b))
#define QD_ADD(a, b) __fadd_rn((a), (b))
#else
#define QD_MUL(a, b) ((a) * (b))
#define QD_ADD(a, b) ((a) + (b))
#endif

#define QD_CHUNK 32

/* ggml type numbers (quant_types.h's ggml_type), repeated here so device code needs no host
 * header; tests/test_fwd_dequant.c checks they agree. */
enum {
    QD_F32 = 0, QD_F16 = 1, QD_Q4_0 = 2, QD_Q4_1 = 3, QD_Q5_0 = 6, QD_Q5_1 = 7, QD_Q8_0 = 8,
    QD_Q4_K = 12, QD_Q5_K = 13, QD_Q6_K = 14, QD_BF16 = 30,
};

/* 1 for the formats the device kernels run (quant_supported()'s list). */
QD_HD static inline int qd_supported(int t) {
    switch (t) {
    case QD_F32: case QD_F16: case QD_BF16: case QD_Q4_0: case QD_Q4_1: case QD_Q5_0:
    case QD_Q5_1: case QD_Q8_0: case QD_Q4_K: case QD_Q5_K: case QD_Q6_K:
        return 1;
    default:
        return 0;
    }
}

QD_HD static inline int qd_block_elems(int t) {
    switch (t) {
    case QD_F32: case QD_F16: case QD_BF16: return 1;
    case QD_Q4_K: case QD_Q5_K: case QD_Q6_K: return 256;
    default: return 32;
    }
}

QD_HD static inline int qd_block_bytes(int t) {
    switch (t) {
    case QD_F32: return 4;
    case QD_F16: case QD_BF16: return 2;
    case QD_Q4_0: return 18;
    case QD_Q4_1: return 20;
    case QD_Q5_0: return 22;
    case QD_Q5_1: return 24;
    case QD_Q8_0: return 34;
    case QD_Q4_K: return 144;
    case QD_Q5_K: return 176;
    case QD_Q6_K: return 210;
    default: return 0;
    }
}

/* Chunks in a row of cols elements. */
QD_HD static inline int64_t qd_row_chunks(int64_t cols) { return (cols + QD_CHUNK - 1) / QD_CHUNK; }

/* Chunk c of a row: the byte offset of its block (float formats: of its first element) and
 * its index inside that block (*sub). */
QD_HD static inline int64_t qd_chunk_at(int t, int64_t c, int *sub) {
    int be = qd_block_elems(t);
    if (be == 1) {
        *sub = 0;
        return c * QD_CHUNK * qd_block_bytes(t);
    }
    int per = be / QD_CHUNK;
    *sub = (int)(c % per);
    return (c / per) * qd_block_bytes(t);
}

/* The bytes [*b0, *b1) of a row (row_bytes long) that chunks [c0, c1) read: whole blocks
 * (float formats: the chunks' elements). A warp stages this stretch, widened to 16-byte
 * words, before its lanes dequantize one chunk each; with c1 - c0 <= 32 the widened stretch
 * is at most QD_STAGE_BYTES. */
#define QD_STAGE_BYTES (32 * QD_CHUNK * 4 + 32)
QD_HD static inline void qd_stage_range(int t, int64_t row_bytes, int64_t c0, int64_t c1,
                                        int64_t *b0, int64_t *b1) {
    int sub;
    *b0 = qd_chunk_at(t, c0, &sub);
    if (qd_block_elems(t) == 1) {
        int64_t e = c1 * QD_CHUNK * qd_block_bytes(t);
        *b1 = e < row_bytes ? e : row_bytes;
    } else {
        *b1 = qd_chunk_at(t, c1 - 1, &sub) + qd_block_bytes(t);
    }
}

QD_HD static inline uint16_t qd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
QD_HD static inline uint32_t qd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

QD_HD static inline float qd_bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    union { uint32_t u; float f; } x;
    x.u = u;
    return x.f;
#endif
}

/* IEEE half to float, exactly (rb_half_to_float's rule). */
QD_HD static inline float qd_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    return qd_bits_float(bits);
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block (quant_ref.c's k_scale_min). */
QD_HD static inline void qd_k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Dequantize chunk `sub` of the block at b into y[0..32) (float formats: the n <= 32
 * elements at b into y[0..n)), in quant_ref.c's arithmetic. */
QD_HD static inline void qd_chunk(int t, const uint8_t *b, int sub, int n, float *y) {
    switch (t) {
    case QD_F32:
        for (int i = 0; i < n; i++) y[i] = qd_bits_float(qd_u32(b + 4 * i));
        break;
    case QD_F16:
        for (int i = 0; i < n; i++) y[i] = qd_half(qd_u16(b + 2 * i));
        break;
    case QD_BF16:
        for (int i = 0; i < n; i++) y[i] = qd_bits_float((uint32_t)qd_u16(b + 2 * i) << 16);
        break;
    case QD_Q4_0: {
        float d = qd_half(qd_u16(b));
        for (int i = 0; i < 16; i++) {
            y[i] = QD_MUL(d, (float)((b[2 + i] & 0x0F) - 8));
            y[i + 16] = QD_MUL(d, (float)((b[2 + i] >> 4) - 8));
        }
        break;
    }
    case QD_Q4_1: {
        float d = qd_half(qd_u16(b)), m = qd_half(qd_u16(b + 2));
        for (int i = 0; i < 16; i++) {
            y[i] = QD_ADD(QD_MUL(d, (float)(b[4 + i] & 0x0F)), m);
            y[i + 16] = QD_ADD(QD_MUL(d, (float)(b[4 + i] >> 4)), m);
        }
        break;
    }
    case QD_Q5_0: {
        float d = qd_half(qd_u16(b));
        uint32_t qh = qd_u32(b + 2);
        for (int i = 0; i < 16; i++) {
            int lo = (b[6 + i] & 0x0F) | (int)(((qh >> i) & 1) << 4);
            int hi = (b[6 + i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
            y[i] = QD_MUL(d, (float)(lo - 16));
            y[i + 16] = QD_MUL(d, (float)(hi - 16));
        }
        break;
    }
    case QD_Q5_1: {
        float d = qd_half(qd_u16(b)), m = qd_half(qd_u16(b + 2));
        uint32_t qh = qd_u32(b + 4);
        for (int i = 0; i < 16; i++) {
            int lo = (b[8 + i] & 0x0F) | (int)(((qh >> i) & 1) << 4);
            int hi = (b[8 + i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
            y[i] = QD_ADD(QD_MUL(d, (float)lo), m);
            y[i + 16] = QD_ADD(QD_MUL(d, (float)hi), m);
        }
        break;
    }
    case QD_Q8_0: {
        float d = qd_half(qd_u16(b));
        for (int i = 0; i < 32; i++) y[i] = QD_MUL((float)(int8_t)b[2 + i], d);
        break;
    }
    case QD_Q4_K:
    case QD_Q5_K: {
        /* sub-block j = sub: 32 nibbles at qs + 32 (j / 2), low or high; Q5_K's fifth bit is
         * bit j of qh[l] */
        float d = qd_half(qd_u16(b)), dmin = qd_half(qd_u16(b + 2));
        int sc, m;
        qd_k_scale_min(b + 4, sub, &sc, &m);
        float d1 = QD_MUL(d, (float)sc), m1 = QD_MUL(dmin, (float)m);
        const uint8_t *qh = t == QD_Q5_K ? b + 16 : 0;
        const uint8_t *q = (t == QD_Q5_K ? b + 48 : b + 16) + 32 * (sub / 2);
        int shift = 4 * (sub % 2);
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> shift) & 0x0F) | (qh ? ((qh[l] >> sub) & 1) << 4 : 0);
            y[l] = QD_ADD(QD_MUL(d1, (float)v), -m1);
        }
        break;
    }
    case QD_Q6_K: {
        /* chunk sub = 4h + k: half h, quarter k (quant_ref.c's dequant_q6_k) */
        int h = sub / 4, k = sub % 4;
        const uint8_t *ql = b + 64 * h + 32 * (k % 2), *qh = b + 128 + 32 * h;
        const int8_t *scales = (const int8_t *)(b + 192);
        float d = qd_half(qd_u16(b + 208));
        for (int l = 0; l < 32; l++) {
            int lo = (ql[l] >> (4 * (k / 2))) & 0x0F;
            int hi = (qh[l] >> (2 * k)) & 3;
            int q = (lo | (hi << 4)) - 32;
            int e = 128 * h + 32 * k + l;
            y[l] = QD_MUL(QD_MUL(d, (float)scales[e / 16]), (float)q);
        }
        break;
    }
    default:
        for (int i = 0; i < n; i++) y[i] = 0;
        break;
    }
}

#endif
