/* fuzz_util.h: what the libFuzzer targets share. The readers take a path, so the input's
 * bytes are put in an anonymous memory file (memfd) and opened as /proc/self/fd/N: no file
 * is left anywhere, whatever the run does. libhdf5 resolves the real path of a file it
 * opens, which a memfd has not: the HDF5 targets use fuzz_tmp_file instead, one file per
 * process in $TMPDIR (default /tmp), rewritten for each input and removed at exit. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rb.h"

static inline void fuzz_write_all(int fd, const uint8_t *data, size_t size) {
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            perror("write");
            abort();
        }
        off += (size_t)w;
    }
}

/* Writes data to a fresh memfd and its path into path[64]; returns the fd (close it after). */
static inline int fuzz_file(const uint8_t *data, size_t size, char path[64]) {
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    fuzz_write_all(fd, data, size);
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

static char fuzz_tmp_path[4096];
static void fuzz_tmp_remove(void) { unlink(fuzz_tmp_path); }

/* Writes data to this process's temporary file and returns its path. */
static inline const char *fuzz_tmp_file(const uint8_t *data, size_t size) {
    if (!fuzz_tmp_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_tmp_path, sizeof fuzz_tmp_path, "%s/rb-fuzz-%d.h5", dir && *dir ? dir : "/tmp",
                 (int)getpid());
        atexit(fuzz_tmp_remove);
    }
    int fd = open(fuzz_tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(fuzz_tmp_path);
        abort();
    }
    fuzz_write_all(fd, data, size);
    close(fd);
    return fuzz_tmp_path;
}

/* RB_FUZZ_H5_RAW=0: inputs that are an HDF5 file's own bytes are skipped (the target returns
 * -1: libFuzzer neither runs them nor keeps them), so that only h5tree programs run. Raw
 * files mostly find libhdf5's own bugs within a few hundred executions, which needs fork
 * mode and its restarts; without them a run stays in one process, several times faster. */
static inline int fuzz_h5_raw_skipped(void) {
    static int skip = -1;
    if (skip < 0) {
        const char *v = getenv("RB_FUZZ_H5_RAW");
        skip = v && !strcmp(v, "0");
    }
    return skip;
}

/* An HDF5 input: bytes starting with HDF5's signature are the file itself (libhdf5 parses
 * them); anything else is a program for h5tree_build (h5tree.h), which writes the file
 * through libhdf5. Include h5tree.h before calling it. NULL: a raw file skipped (above). */
#define fuzz_h5_input(data, size)                                                             \
    ((size) >= 4 && !memcmp((data), "\x89HDF", 4)                                            \
         ? (fuzz_h5_raw_skipped() ? NULL : fuzz_tmp_file((data), (size)))                     \
         : (fuzz_tmp_file(NULL, 0), h5tree_build(fuzz_tmp_path, (data), (size)), fuzz_tmp_path))

/* RB_FUZZ_VERBOSE=1: print each refusal (to see what inputs reach). */
static inline void fuzz_say(rb_status s, const rb_err *e) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("RB_FUZZ_VERBOSE") != NULL;
    if (s && verbose) fprintf(stderr, "refused: %s: %s\n", e->what, e->why);
}

#endif
