/* progress.c - see progress.h */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int quiet;

void progress_set_quiet(int q)
{
	quiet = q;
}

double progress_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void draw(struct progress *p)
{
	double el = progress_now() - p->t0;
	double rate = el > 0 ? (double)p->done / el : 0;
	char bar[31];
	int width = 30, fill = 0;
	if (p->total)
		fill = (int)((double)width * (double)p->done / (double)p->total);
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : (p->total ? '.' : ' ');
	bar[width] = 0;
	if (p->total) {
		double left = rate > 0 ? (double)(p->total - p->done) / rate : 0;
		fprintf(stderr, "\r%s [%s] %llu/%llu %s  %.1f/s  %02d:%02d left ", p->label, bar,
		        (unsigned long long)p->done, (unsigned long long)p->total, p->unit, rate,
		        (int)(left / 60), (int)left % 60);
	} else {
		fprintf(stderr, "\r%s %llu %s  %.1f/s ", p->label, (unsigned long long)p->done,
		        p->unit, rate);
	}
	fflush(stderr);
}

void progress_start(struct progress *p, const char *label, uint64_t total, const char *unit)
{
	p->label = label;
	p->total = total;
	p->done = 0;
	p->unit = unit ? unit : "";
	p->t0 = p->tlast = progress_now();
	p->active = !quiet && isatty(2);
}

void progress_update(struct progress *p, uint64_t done)
{
	p->done = done;
	if (!p->active)
		return;
	double t = progress_now();
	if (t - p->tlast < 0.1 && done != p->total)
		return;
	p->tlast = t;
	draw(p);
}

void progress_done(struct progress *p)
{
	if (!p->active)
		return;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	p->active = 0;
}
