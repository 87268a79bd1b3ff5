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
#include <unistd.h>

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

/* This host's name as it goes into temporary names: at most 63 bytes, no '/'. */
static void host_name(char *buf, size_t cap) {
    char h[256] = "";
    if (gethostname(h, sizeof h - 1) != 0 || !*h) snprintf(h, sizeof h, "localhost");
    snprintf(buf, cap < 64 ? cap : 64, "%s", h);
    for (char *p = buf; *p; p++)
        if (*p == '/') *p = '_';
}

/* In dir, the stale temporaries of files named `base` (every file when base is NULL). */
static int clean(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    char p[4400];
    int n = 0;
    size_t bl = base ? strlen(base) : 0;
    char host[64];
    host_name(host, sizeof host);
    while ((de = readdir(d))) {
        const char *t = strstr(de->d_name, ".tmp-");
        if (!t || (base && ((size_t)(t - de->d_name) != bl || strncmp(de->d_name, base, bl))))
            continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if ((*end && (*end != '-' || strcmp(end + 1, host))) || pid <= 0) continue;
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

void output_tmp_path(const char *path, char *buf, size_t cap) {
    char host[64];
    host_name(host, sizeof host);
    snprintf(buf, cap, "%s.tmp-%ld-%s", path, (long)getpid(), host);
}

rb_status output_text_open(output_text *o, const char *path, rb_err *e) {
    o->f = NULL;
    o->path = path;
    rb_status st = output_check(path, e);
    if (st) return st;
    output_tmp_path(path, o->tmp, sizeof o->tmp);
    if (!(o->f = fopen(o->tmp, "wb")))
        return rb_fail(e, RB_EINPUT, path, "cannot create (directory missing or not writable?)");
    return RB_OK;
}

rb_status output_text_close(output_text *o, rb_status st, rb_err *e) {
    if (!o->f) return st;
    if (fclose(o->f) != 0 && !st) st = rb_fail(e, RB_EINTERNAL, o->path, "write failed");
    o->f = NULL;
    if (!st && rename(o->tmp, o->path) != 0)
        st = rb_fail(e, RB_EINTERNAL, o->path, "cannot rename %s into place", o->tmp);
    if (st) remove(o->tmp);
    return st;
}

rb_status output_write_text(const char *path, const char *text, rb_err *e) {
    output_text o;
    rb_status st = output_text_open(&o, path, e);
    if (st) return st;
    if (fputs(text, o.f) < 0) st = rb_fail(e, RB_EINTERNAL, path, "write failed");
    return output_text_close(&o, st, e);
}

rb_status output_claim_dir(const char *dir, const char *name, const char *identity,
                           const char *mismatch, rb_err *e) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return rb_fail(e, RB_EINPUT, dir, "cannot create the directory: %s", strerror(errno));
    output_clean_stale(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, F_OK) != 0) return output_write_text(path, identity, e);
    char *old;
    rb_status st = rb_read_file(path, (size_t)64 << 20, &old, NULL, e);
    if (st) return st;
    int same = !strcmp(old, identity);
    free(old);
    return same ? RB_OK : rb_fail(e, RB_EINPUT, dir, "%s", mismatch);
}
