/* afile.h - atomic output files: write to a temporary name, then rename.
 *
 * afile_open creates "<dir>/.<base>.tmp-<host>.<pid>-XXXXXX" beside the
 * target, so the final rename stays on one file system; the first time a
 * process writes into a folder, it removes the temporaries there that a
 * killed writer of this host left (its pid is gone), and says so through
 * the notice callback.  An output that is one of the inputs registered
 * with afile_protect is refused before anything is written.  afile_commit flushes, fsyncs,
 * renames over the target and fsyncs the directory; afile_abort removes the
 * temporary.  An interrupted run leaves the old file or the new one, never a
 * torn one.  The path "-" means stdout: nothing is renamed, and commit only
 * flushes.  A target that exists and is not a regular file (/dev/null, a
 * FIFO) is written in place, never renamed over.
 *
 * Thread safety: one struct afile per thread.  Errors: negative ERR_* with
 * a message in e.
 */
#ifndef WENO_AFILE_H
#define WENO_AFILE_H

#include <stdio.h>

#include "err.h"

struct afile {
	FILE *fp;          /* write here */
	char *path;        /* final name (owned) */
	char *tmp;         /* temporary name (owned); NULL for stdout */
	int in_place;      /* the target is a device or FIFO: written directly */
};

int afile_open(struct afile *af, const char *path, struct err *e);

/* Registers an input file (its device and inode) that no later afile_open
 * may write over: a tool calls it for every file it reads, before it
 * writes.  "-" and a missing path are ignored. */
int afile_protect(const char *path, struct err *e);

/* Where afile says what it did beside its result (a stale temporary
 * removed): the tools print msg as "tool: msg" on stderr.  Set once at
 * start-up; NULL (the default) says nothing. */
void afile_set_notice(void (*fn)(const char *msg));
int afile_commit(struct afile *af, struct err *e);
void afile_abort(struct afile *af);


/* An output held by one run at a time: afile_lock takes an exclusive
 * flock on "<dir>/.<base>.lock" (created, holding the holder's pid, host
 * and start time) and fails at once, naming the run that holds it, when
 * another process does.  The lock goes with the process (a killed run
 * leaves nothing that blocks the next); afile_unlock removes the file.
 * what names the tool in the file ("weno-fit"). */
struct afile_lock {
	int fd;
	char *path;
};
int afile_lock(struct afile_lock *l, const char *path, const char *what, struct err *e);
void afile_unlock(struct afile_lock *l);

/* fsyncs the folder that holds path, so that a rename into it is durable
 * (for writers that cannot use afile_open, such as HDF5's). */
void afile_sync_parent(const char *path);

/* Creates dir and its missing parents (mkdir -p). */
int afile_mkdirs(const char *dir, struct err *e);

/* Writes a whole buffer to path atomically. */
int afile_write_all(const char *path, const void *buf, size_t n, struct err *e);

#endif
