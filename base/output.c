/* output.c: output_check (output.h). */
#define _POSIX_C_SOURCE 200809L
#include "output.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

rb_status output_check(const char *path, rb_err *e) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? RB_OK : rb_fail(e, RB_EINPUT, path, "%s", strerror(errno));
    if (S_ISREG(st.st_mode)) return RB_OK;
    const char *what = S_ISDIR(st.st_mode)   ? "a directory"
                       : S_ISLNK(st.st_mode) ? "a symbolic link"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                     : "not a regular file";
    return rb_fail(e, RB_EINPUT, path, "is %s: an output must be a new or regular file", what);
}
