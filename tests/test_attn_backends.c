/* test_attn_backends.c: every attention backend of attn_backend_list() that supports the
 * shape on this machine, slot by slot, against the "ref" backend on the same inputs, over
 * the shapes and with the tolerances of attn_backend_check.h. A backend that supports no
 * shape here (cuda without a GPU) is reported as skipped and the test still passes; in a
 * build without CUDA, cuda is not listed at all, and the test checks that too. */
#include "attn_backend_check.h"

int main(void) {
    int nb;
    const attn_backend *const *list = attn_backend_list(&nb);
    const attn_backend *ref = attn_backend_find("ref");
    TU_ASSERT(ref && attn_backend_find("cpu") && attn_backend_default() == attn_backend_find("cpu"),
              "ref and cpu registered, cpu the default");
    TU_ASSERT(attn_backend_find("no-such") == NULL, "unknown names are not found");
#ifdef RB_HAVE_CUDA
    TU_ASSERT(attn_backend_find("cuda") != NULL, "a CUDA build lists cuda");
#else
    TU_ASSERT(attn_backend_find("cuda") == NULL, "a build without CUDA does not list cuda");
    printf("# cuda: not in this build (CUDA=0 or no nvcc)\n");
#endif
    for (int b = 0; b < nb; b++) {
        const attn_backend *be = list[b];
        TU_ASSERT(be->name && be->summary && be->supports && be->dense_heads && be->gather &&
                      be->weighted_rows && be->causal && be->causal_chunk,
                  "backend %d fills every slot", b);
        TU_ASSERT(attn_backend_find(be->name) == be, "%s found by its name", be->name);
        if (be == ref) { /* the reference itself: nothing to compare it with */
            printf("# ref: the reference\n");
            continue;
        }
        int skipped, run = check_backend(be, ref, &skipped);
        if (run)
            printf("# %s: %d shapes checked against ref%s\n", be->name, run,
                   skipped ? " (the others unsupported here, skipped)" : "");
        else
            printf("# %s: skipped (supports no shape on this machine: no GPU)\n", be->name);
    }
    printf("# largest error / tolerance: %.3g\n", worst);
    return tu_done("test_attn_backends");
}
