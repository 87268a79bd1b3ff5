/* output.h: how every writer puts a file in place: checked first (a rename over a device, a
 * directory or a link target would destroy it: renaming onto /dev/null replaces the device
 * with a file), written under "<path>.tmp-<pid>", renamed when whole; temporaries of killed
 * writers cleaned by the next run. Also the directories of resumable work (sweep cells, eval
 * parts), which remember what they belong to. */
#ifndef OUTPUT_H
#define OUTPUT_H

#include <stdio.h>

#include "rb.h"

/* "<path>.tmp-<pid>-<host>": where a file is written before it is renamed into place. The
 * host (gethostname) is there because shards of one sweep on several machines write into
 * one shared directory, and a process id says whether a writer is alive on its own host
 * only. */
void output_tmp_path(const char *path, char *buf, size_t cap);

/* Begin writing `path`: remove the stale temporaries of dead writers of it, put its
 * temporary name into buf and register that name, so that it is removed if this process
 * exits or is killed by SIGINT, SIGTERM or SIGHUP before output_tmp_end. (kill -9 cannot be
 * caught: the next writer of the path removes what it left.) */
void output_tmp_begin(const char *path, char *buf, size_t cap);
/* End it: with st RB_OK rename tmp to path (a failure becomes RB_EINPUT), otherwise remove
 * tmp; either way release the name. Returns st or the rename's failure. */
rb_status output_tmp_end(const char *tmp, const char *path, rb_status st, rb_err *e);
/* The registry itself, for writers that name their temporaries otherwise. */
void output_tmp_register(const char *tmp);
void output_tmp_release(const char *tmp);
/* A failed write of `what` into path as RB_EINPUT, naming errno when it says why (no space
 * left on device, quota exceeded, I/O error). */
rb_status output_write_error(rb_err *e, const char *path, const char *what);

/* RB_OK when `path` is absent or a regular file; RB_EINPUT naming the path otherwise (a
 * directory, a device, a socket, a FIFO, or a symbolic link). */
rb_status output_check(const char *path, rb_err *e);

/* output_check, and then that path is none of inputs[0..n) (NULL entries skipped): the same
 * file (device and inode), however reached (the same name, a hard link, a symbolic link to
 * it), is refused with RB_EINPUT before any work, so an output never destroys its input.
 * Every command calls it with all the files it reads. */
rb_status output_check_inputs(const char *path, const char *const *inputs, int n, rb_err *e);

/* output_check_inputs for each of outs[0..n_out) (NULL entries skipped) against ins[0..n_in),
 * and no two outputs the same file. */
rb_status output_check_all(const char *const *outs, int n_out, const char *const *ins, int n_in,
                           rb_err *e);

/* Remove the temporary files ("<name>.tmp-<pid>-<host>") a killed writer left in `dir`:
 * those of this host whose process no longer exists (a live writer's, and another host's,
 * are left alone; "<name>.tmp-<pid>" counts as this host's). Returns how many. */
int output_clean_stale(const char *dir);
/* The same for one output: its own "<path>.tmp-<pid>" files only. */
int output_clean_stale_of(const char *path);

/* A text output written under its temporary name. output_text_open checks the path
 * (output_check) and creates the temporary; output_text_close closes it and, when st is RB_OK
 * and the write succeeded, renames it into place, otherwise removes it; it returns st or the
 * close's own failure. */
typedef struct output_text {
    FILE *f;
    const char *path;
    char tmp[4352];
} output_text;
rb_status output_text_open(output_text *o, const char *path, rb_err *e);
rb_status output_text_close(output_text *o, rb_status st, rb_err *e);
/* A whole text file at once, the same way. */
rb_status output_write_text(const char *path, const char *text, rb_err *e);

/* Create `dir` if needed and claim it for the work described by `identity` (a text kept in
 * dir/name): a new directory takes it, one holding the same identity is resumed, one holding
 * another is refused with RB_EINPUT and `mismatch` as the reason. Stale temporaries of dead
 * writers in dir are removed. */
rb_status output_claim_dir(const char *dir, const char *name, const char *identity,
                           const char *mismatch, rb_err *e);

#endif
