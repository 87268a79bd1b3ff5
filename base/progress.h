/* progress.h: a progress bar with rate and ETA on stderr, drawn only when stderr is a
 * terminal (so logs and CI stay clean). Thread-safe. */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stdint.h>

typedef struct progress progress;
/* NULL when stderr is not a terminal; every function accepts NULL. */
progress *progress_create(const char *label, int64_t total);
void progress_add(progress *p, int64_t n);
void progress_destroy(progress *p); /* finishes the line */

#endif
