/* output.h: the check every writer makes before it writes a final file under a temporary name
 * and renames it into place: a rename over a device, a directory or a link target would
 * destroy it (renaming onto /dev/null replaces the device with a file). */
#ifndef OUTPUT_H
#define OUTPUT_H

#include "rb.h"

/* RB_OK when `path` is absent or a regular file; RB_EINPUT naming the path otherwise (a
 * directory, a device, a socket, a FIFO, or a symbolic link). */
rb_status output_check(const char *path, rb_err *e);

/* Remove the temporary files ("<name>.tmp-<pid>") a killed writer left in `dir`: those whose
 * process no longer exists (a live writer's are left alone). Returns how many. */
int output_clean_stale(const char *dir);
/* The same for one output: its own "<path>.tmp-<pid>" files only. */
int output_clean_stale_of(const char *path);

#endif
