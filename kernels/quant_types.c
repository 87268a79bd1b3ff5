/* quant_types.c: ggml tensor type names and block geometry (declared in quant_types.h),
 * written from the format descriptions. The gguf reader uses these to size tensors; the
 * quant kernels use them to walk rows. */
#include "quant_types.h"

typedef struct ggml_type_info {
    const char *name;
    int block_elems;
    size_t block_bytes;
} ggml_type_info;

/* Block sizes follow the ggml C structs (checked against the gguf Python package's
 * GGML_QUANT_SIZES in tests/test_quant.c's fixture). Q8_1 is 36 bytes (fp16 d, fp16 s,
 * 32 int8) as in ggml's block_q8_1; it is an activation-side format that never appears
 * as a stored tensor. */
static ggml_type_info type_info(ggml_type t) {
    switch (t) {
    case GGML_T_F32: return (ggml_type_info){"F32", 1, 4};
    case GGML_T_F16: return (ggml_type_info){"F16", 1, 2};
    case GGML_T_BF16: return (ggml_type_info){"BF16", 1, 2};
    case GGML_T_Q4_0: return (ggml_type_info){"Q4_0", 32, 2 + 16};
    case GGML_T_Q4_1: return (ggml_type_info){"Q4_1", 32, 2 + 2 + 16};
    case GGML_T_Q5_0: return (ggml_type_info){"Q5_0", 32, 2 + 4 + 16};
    case GGML_T_Q5_1: return (ggml_type_info){"Q5_1", 32, 2 + 2 + 4 + 16};
    case GGML_T_Q8_0: return (ggml_type_info){"Q8_0", 32, 2 + 32};
    case GGML_T_Q8_1: return (ggml_type_info){"Q8_1", 32, 2 + 2 + 32};
    case GGML_T_Q2_K: return (ggml_type_info){"Q2_K", 256, 16 + 64 + 2 + 2};
    case GGML_T_Q3_K: return (ggml_type_info){"Q3_K", 256, 32 + 64 + 12 + 2};
    case GGML_T_Q4_K: return (ggml_type_info){"Q4_K", 256, 2 + 2 + 12 + 128};
    case GGML_T_Q5_K: return (ggml_type_info){"Q5_K", 256, 2 + 2 + 12 + 32 + 128};
    case GGML_T_Q6_K: return (ggml_type_info){"Q6_K", 256, 128 + 64 + 16 + 2};
    case GGML_T_Q8_K: return (ggml_type_info){"Q8_K", 256, 4 + 256 + 16 * 2};
    }
    return (ggml_type_info){"unknown", 0, 0};
}

const char *ggml_type_name(ggml_type t) { return type_info(t).name; }
int ggml_block_elems(ggml_type t) { return type_info(t).block_elems; }
size_t ggml_block_bytes(ggml_type t) { return type_info(t).block_bytes; }
