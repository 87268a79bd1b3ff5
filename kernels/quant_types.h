/* quant_types.h: the tensor element types of GGUF files (ggml's numbering) and their block
 * geometry. Kernels walk rows by these; the GGUF reader sizes tensors by them. */
#ifndef QUANT_TYPES_H
#define QUANT_TYPES_H

#include <stddef.h>

/* Tensor element types (ggml numbering). */
typedef enum {
    GGML_T_F32 = 0, GGML_T_F16 = 1, GGML_T_Q4_0 = 2, GGML_T_Q4_1 = 3, GGML_T_Q5_0 = 6,
    GGML_T_Q5_1 = 7, GGML_T_Q8_0 = 8, GGML_T_Q8_1 = 9, GGML_T_Q2_K = 10, GGML_T_Q3_K = 11,
    GGML_T_Q4_K = 12, GGML_T_Q5_K = 13, GGML_T_Q6_K = 14, GGML_T_Q8_K = 15, GGML_T_BF16 = 30,
} ggml_type;

const char *ggml_type_name(ggml_type t);
/* Elements per block and bytes per block of a type; 0 for an unknown type. */
int ggml_block_elems(ggml_type t);
size_t ggml_block_bytes(ggml_type t);

#endif
