/* output.c: output_check (output.h). */
#define _POSIX_C_SOURCE 200809L
#include "output.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

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

/* In dir, the stale temporaries of files named `base` (every file when base is NULL). */
static int clean(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    char p[4400];
    int n = 0;
    size_t bl = base ? strlen(base) : 0;
    while ((de = readdir(d))) {
        const char *t = strstr(de->d_name, ".tmp-");
        if (!t || (base && ((size_t)(t - de->d_name) != bl || strncmp(de->d_name, base, bl))))
            continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (*end || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* its writer may be alive */
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        n += remove(p) == 0;
    }
    closedir(d);
    return n;
}

int output_clean_stale(const char *dir) { return clean(dir, NULL); }

int output_clean_stale_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) return clean(".", path);
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) > 0 ? (int)(slash - path) : 1, path);
    return clean(dir, slash + 1);
}
