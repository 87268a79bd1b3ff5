/* ggml_types_tmp.h: TEMPORARY tests-only stand-ins for ggml_type_name, ggml_block_elems
 * and ggml_block_bytes until the quant branch (kernels/) provides them. They are weak, so
 * the real definitions win as soon as they are linked. Remove once quant is merged.
 * Sizes from ggml's block structs (ggml-common.h). */
#ifndef GGML_TYPES_TMP_H
#define GGML_TYPES_TMP_H

#include "gguf.h"

__attribute__((weak)) const char *ggml_type_name(ggml_type t) {
    switch (t) {
    case GGML_T_F32: return "F32";
    case GGML_T_F16: return "F16";
    case GGML_T_Q4_0: return "Q4_0";
    case GGML_T_Q4_1: return "Q4_1";
    case GGML_T_Q5_0: return "Q5_0";
    case GGML_T_Q5_1: return "Q5_1";
    case GGML_T_Q8_0: return "Q8_0";
    case GGML_T_Q8_1: return "Q8_1";
    case GGML_T_Q2_K: return "Q2_K";
    case GGML_T_Q3_K: return "Q3_K";
    case GGML_T_Q4_K: return "Q4_K";
    case GGML_T_Q5_K: return "Q5_K";
    case GGML_T_Q6_K: return "Q6_K";
    case GGML_T_Q8_K: return "Q8_K";
    case GGML_T_BF16: return "BF16";
    }
    return "unknown";
}

__attribute__((weak)) int ggml_block_elems(ggml_type t) {
    switch (t) {
    case GGML_T_F32: case GGML_T_F16: case GGML_T_BF16: return 1;
    case GGML_T_Q4_0: case GGML_T_Q4_1: case GGML_T_Q5_0: case GGML_T_Q5_1: case GGML_T_Q8_0:
    case GGML_T_Q8_1: return 32;
    case GGML_T_Q2_K: case GGML_T_Q3_K: case GGML_T_Q4_K: case GGML_T_Q5_K: case GGML_T_Q6_K:
    case GGML_T_Q8_K: return 256;
    }
    return 0;
}

__attribute__((weak)) size_t ggml_block_bytes(ggml_type t) {
    switch (t) {
    case GGML_T_F32: return 4;
    case GGML_T_F16: case GGML_T_BF16: return 2;
    case GGML_T_Q4_0: return 18;
    case GGML_T_Q4_1: return 20;
    case GGML_T_Q5_0: return 22;
    case GGML_T_Q5_1: return 24;
    case GGML_T_Q8_0: return 34;
    case GGML_T_Q8_1: return 36;
    case GGML_T_Q2_K: return 84;
    case GGML_T_Q3_K: return 110;
    case GGML_T_Q4_K: return 144;
    case GGML_T_Q5_K: return 176;
    case GGML_T_Q6_K: return 210;
    case GGML_T_Q8_K: return 292;
    }
    return 0;
}

#endif
