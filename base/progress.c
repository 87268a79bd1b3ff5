/* progress.c: terminal progress bar (see progress.h). Redraws at most ten times a second. */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "rb.h"

struct progress {
    char label[32];
    int64_t total, done, t0, last_draw;
    pthread_mutex_t lock;
};

progress *progress_create(const char *label, int64_t total) {
    if (!isatty(2) || total <= 0) return NULL;
    progress *p = rb_calloc(1, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t0 = rb_now_ns();
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void draw(progress *p, int64_t now) {
    double f = (double)p->done / p->total, el = (now - p->t0) / 1e9;
    double eta = f > 0 ? el * (1 - f) / f : 0;
    int w = 30, fill = (int)(f * w);
    char bar[64];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '-';
    bar[w] = 0;
    fprintf(stderr, "\r%s [%s] %5.1f%%  %.0fs elapsed, ETA %.0fs   ", p->label, bar, 100 * f, el, eta);
    fflush(stderr);
    p->last_draw = now;
}

void progress_add(progress *p, int64_t n) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->done += n;
    if (p->done > p->total) p->done = p->total;
    int64_t now = rb_now_ns();
    if (now - p->last_draw > 100000000) draw(p, now);
    pthread_mutex_unlock(&p->lock);
}

void progress_destroy(progress *p) {
    if (!p) return;
    p->done = p->total;
    draw(p, rb_now_ns());
    fputc('\n', stderr);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
