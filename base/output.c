/* output.c: putting outputs in place (output.h): checks, temporaries (their registry, removed
 * on failure, at exit and on SIGINT/SIGTERM/SIGHUP), text outputs, claimed directories. */
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
#include <pthread.h>

/* ---- the temporaries this process is writing ---- */

/* Fixed slots so that the signal handler can walk them without locks or allocation: a slot
 * is written whole before `used` is set, and `used` cleared before it is reused. */
#define N_TMP 64
static char tmp_names[N_TMP][4352];
static volatile sig_atomic_t tmp_used[N_TMP];
static pthread_mutex_t tmp_lock = PTHREAD_MUTEX_INITIALIZER;

static void remove_registered(void) {
    for (int i = 0; i < N_TMP; i++)
        if (tmp_used[i]) unlink(tmp_names[i]);
}

static void on_signal(int sig) {
    remove_registered(); /* unlink is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void) {
    static int done;
    if (done) return;
    done = 1;
    atexit(remove_registered);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        /* leave a signal someone chose to ignore (nohup) ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

void output_tmp_register(const char *tmp) {
    pthread_mutex_lock(&tmp_lock);
    install_handlers();
    for (int i = 0; i < N_TMP; i++)
        if (!tmp_used[i]) {
            snprintf(tmp_names[i], sizeof tmp_names[i], "%s", tmp);
            tmp_used[i] = 1;
            break;
        }
    pthread_mutex_unlock(&tmp_lock);
}

void output_tmp_release(const char *tmp) {
    pthread_mutex_lock(&tmp_lock);
    for (int i = 0; i < N_TMP; i++)
        if (tmp_used[i] && !strcmp(tmp_names[i], tmp)) {
            tmp_used[i] = 0;
            break;
        }
    pthread_mutex_unlock(&tmp_lock);
}

void output_tmp_begin(const char *path, char *buf, size_t cap) {
    output_clean_stale_of(path);
    output_tmp_path(path, buf, cap);
    output_tmp_register(buf);
}

rb_status output_tmp_end(const char *tmp, const char *path, rb_status st, rb_err *e) {
    if (!st && rename(tmp, path) != 0)
        st = rb_fail(e, RB_EINPUT, path, "cannot rename %s into place: %s", tmp, strerror(errno));
    if (st) unlink(tmp);
    output_tmp_release(tmp);
    return st;
}

rb_status output_write_error(rb_err *e, const char *path, const char *what) {
    int err = errno;
    if (err == ENOSPC || err == EDQUOT || err == EFBIG || err == EIO)
        return rb_fail(e, RB_EINPUT, path, "cannot write %s: %s", what, strerror(err));
    return rb_fail(e, RB_EINPUT, path, "cannot write %s (disk full or file system error?)", what);
}

/* ---- checks ---- */

rb_status output_check_inputs(const char *path, const char *const *inputs, int n, rb_err *e) {
    rb_status st = output_check(path, e);
    if (st) return st;
    struct stat o, in;
    if (stat(path, &o) != 0) return RB_OK; /* new: cannot be an input */
    for (int i = 0; i < n; i++)
        if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == o.st_dev &&
            in.st_ino == o.st_ino)
            return rb_fail(e, RB_EINPUT, path, "is the input %s%s: refusing to overwrite it",
                           inputs[i], strcmp(inputs[i], path) ? " (the same file)" : "");
    return RB_OK;
}

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
    output_tmp_begin(path, o->tmp, sizeof o->tmp);
    if (!(o->f = fopen(o->tmp, "wb"))) {
        output_tmp_release(o->tmp);
        return rb_fail(e, RB_EINPUT, path, "cannot create (directory missing or not writable?)");
    }
    return RB_OK;
}

rb_status output_text_close(output_text *o, rb_status st, rb_err *e) {
    if (!o->f) return st;
    int bad = ferror(o->f);
    errno = 0;
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    if (bad && !st) st = output_write_error(e, o->path, "the file");
    return output_tmp_end(o->tmp, o->path, st, e);
}

rb_status output_write_text(const char *path, const char *text, rb_err *e) {
    output_text o;
    rb_status st = output_text_open(&o, path, e);
    if (st) return st;
    if (fputs(text, o.f) < 0) st = output_write_error(e, path, "the file");
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

rb_status output_check_all(const char *const *outs, int n_out, const char *const *ins, int n_in,
                           rb_err *e) {
    for (int i = 0; i < n_out; i++) {
        if (!outs[i]) continue;
        rb_status st = output_check_inputs(outs[i], ins, n_in, e);
        if (st) return st;
        for (int j = 0; j < i; j++)
            if (outs[j] && !strcmp(outs[i], outs[j]))
                return rb_fail(e, RB_EINPUT, outs[i], "is given as two outputs");
        if ((st = output_check_inputs(outs[i], outs, i, e)))
            return rb_fail(e, RB_EINPUT, outs[i], "is given as two outputs (the same file)");
    }
    return RB_OK;
}
