/* progress.h - a progress bar on stderr, drawn only when stderr is a
 * terminal and the tool was not asked to be quiet.
 *
 * Redraws at most ten times a second; progress_done erases the bar.  The
 * bar shows a label, done/total, a rate and an estimate of the time left.
 *
 * Thread safety: call from one thread.  No errors.
 */
#ifndef WENO_PROGRESS_H
#define WENO_PROGRESS_H

#include <stdint.h>

struct progress {
	const char *label;
	uint64_t total;     /* 0 when unknown */
	uint64_t done;
	double t0, tlast;
	int active;         /* drawing */
	const char *unit;   /* "bags", "tiles", ... */
};

/* Globally silence every bar (the tools' -q). */
void progress_set_quiet(int quiet);

void progress_start(struct progress *p, const char *label, uint64_t total, const char *unit);
void progress_update(struct progress *p, uint64_t done);
void progress_done(struct progress *p);

/* Seconds since an arbitrary origin, monotonic. */
double progress_now(void);

#endif
