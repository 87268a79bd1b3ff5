/* cuda_rb.cuh: raasbench's base (rb.h: status codes, rb_fail) seen from CUDA C++, and the one
 * macro every .cu file of kernels/cuda/ uses to turn a failed CUDA runtime call into an error.
 * Include it first, before any header that includes rb.h itself. */
#ifndef CUDA_RB_CUH
#define CUDA_RB_CUH

#include <cuda_runtime.h>

#define _Noreturn [[noreturn]] /* rb.h is C11; this is its C++ spelling */
extern "C" {
#include "rb.h" /* C linkage: rb.h has no extern "C" block of its own */
}
#undef _Noreturn

/* Evaluate a CUDA runtime call; on failure return RB_EINTERNAL through rb_fail(e, ...) with
 * `what` and the call's text and error string (an rb_err *e must be in scope). */
#define CU_TRY_AS(what, call)                                                                  \
    do {                                                                                       \
        cudaError_t err_ = (call);                                                             \
        if (err_ != cudaSuccess)                                                               \
            return rb_fail(e, RB_EINTERNAL, what, "%s: %s", #call, cudaGetErrorString(err_));  \
    } while (0)

#endif
