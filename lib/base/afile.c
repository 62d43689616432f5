/* afile.c - see afile.h */
#include "afile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEPT_MAX 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void (*notice)(const char *msg);
static struct protected {
	dev_t dev;
	ino_t ino;
	char *path;               /* as given, for messages */
} *prot;
static int nprot, prot_cap;
static struct {
	dev_t dev;
	ino_t ino;
} swept[SWEPT_MAX];
static int nswept;

void afile_set_notice(void (*fn)(const char *msg))
{
	notice = fn;
}

int afile_protect(const char *path, struct err *e)
{
	struct stat st;
	if (!path || !strcmp(path, "-") || stat(path, &st) != 0)
		return 0; /* stdin, or a file that does not exist: nothing to overwrite */
	pthread_mutex_lock(&lock);
	int rc = 0;
	if (nprot == prot_cap) {
		int nc = prot_cap ? 2 * prot_cap : 16;
		struct protected *q = realloc(prot, (size_t)nc * sizeof *q);
		if (q) {
			prot = q;
			prot_cap = nc;
		}
	}
	if (nprot == prot_cap || !(prot[nprot].path = strdup(path))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
	} else {
		prot[nprot].dev = st.st_dev;
		prot[nprot].ino = st.st_ino;
		nprot++;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

/* an output that is one of the protected inputs: an error naming both */
static int check_not_input(const char *path, struct err *e)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0; /* a new file is no input */
	int rc = 0;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nprot && !rc; i++)
		if (prot[i].dev == st.st_dev && prot[i].ino == st.st_ino)
			rc = err_set(e, ERR_USAGE, "cannot write '%s': it is the input '%s' (the same file), "
			             "which writing would destroy; give the output another name", path,
			             prot[i].path);
	pthread_mutex_unlock(&lock);
	return rc;
}

static void host_tag(char *out, size_t cap)
{
	char h[256] = "host";
	gethostname(h, sizeof h - 1);
	size_t k = 0;
	for (size_t i = 0; h[i] && k + 1 < cap && k < 16; i++)
		if ((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9') ||
		    h[i] == '-')
			out[k++] = h[i];
	out[k] = 0;
}

/* Is name a temporary of this host whose writer is gone?  The form is
 * ".<base>.tmp-<host>.<pid>-XXXXXX". */
static int stale(const char *name, const char *host)
{
	if (name[0] != '.')
		return 0;
	const char *t = strstr(name, ".tmp-");
	while (t && strstr(t + 1, ".tmp-"))
		t = strstr(t + 1, ".tmp-");
	if (!t)
		return 0;
	t += 5;
	size_t hl = strlen(host);
	if (strncmp(t, host, hl) || t[hl] != '.')
		return 0;
	char *end;
	long pid = strtol(t + hl + 1, &end, 10);
	if (pid <= 0 || *end != '-' || strlen(end + 1) != 6)
		return 0;
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Once per folder per process: removes the temporaries that writers on
 * this host left when they were killed (SIGKILL, a crash, a power cut),
 * and says so through the notice callback. */
static void sweep(const char *dir)
{
	struct stat ds;
	if (stat(dir, &ds) != 0)
		return;
	pthread_mutex_lock(&lock);
	int seen = 0;
	for (int i = 0; i < nswept && !seen; i++)
		seen = swept[i].dev == ds.st_dev && swept[i].ino == ds.st_ino;
	if (!seen && nswept < SWEPT_MAX) {
		swept[nswept].dev = ds.st_dev;
		swept[nswept].ino = ds.st_ino;
		nswept++;
	}
	pthread_mutex_unlock(&lock);
	if (seen)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	char host[32];
	host_tag(host, sizeof host);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!stale(de->d_name, host))
			continue;
		char p[PATH_MAX + 256];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode) || unlink(p) != 0)
			continue;
		if (notice) {
			char msg[PATH_MAX + 512];
			snprintf(msg, sizeof msg, "removed '%s' (%.1f MB), the temporary file of an earlier run that "
			         "was killed", p, (double)st.st_size / 1e6);
			notice(msg);
		}
	}
	closedir(d);
}

int afile_open(struct afile *af, const char *path, struct err *e)
{
	memset(af, 0, sizeof *af);
	if (!strcmp(path, "-")) {
		af->fp = stdout;
		af->path = strdup("-");
		if (!af->path)
			return err_set(e, ERR_NOMEM, "out of memory");
		return 0;
	}
	int rc = check_not_input(path, e);
	if (rc)
		return rc;
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* a device, a FIFO, a terminal: write in place, never rename over it */
		if (S_ISDIR(st.st_mode))
			return err_set(e, ERR_IO, "cannot write '%s': it is a directory", path);
		af->fp = fopen(path, "wb");
		af->path = strdup(path);
		if (!af->fp || !af->path) {
			err_sys(e, ERR_IO, "cannot open '%s'", path);
			if (af->fp)
				fclose(af->fp);
			free(af->path);
			memset(af, 0, sizeof *af);
			return ERR_IO;
		}
		af->in_place = 1;
		return 0;
	}
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	const char *base = path + dirlen;
	char dir[PATH_MAX], host[32];
	snprintf(dir, sizeof dir, "%.*s", dirlen ? (int)dirlen : 1, dirlen ? path : ".");
	sweep(dir);
	host_tag(host, sizeof host);
	size_t n = strlen(path) + strlen(host) + 40;
	af->path = strdup(path);
	af->tmp = malloc(n);
	if (!af->path || !af->tmp) {
		free(af->path);
		free(af->tmp);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	snprintf(af->tmp, n, "%.*s.%s.tmp-%s.%ld-XXXXXX", (int)dirlen, path, base, host, (long)getpid());
	int fd = mkstemp(af->tmp);
	if (fd < 0) {
		err_sys(e, ERR_IO, "cannot create '%s'", af->tmp);
		free(af->path);
		free(af->tmp);
		memset(af, 0, sizeof *af);
		return ERR_IO;
	}
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	af->fp = fdopen(fd, "wb");
	if (!af->fp) {
		err_sys(e, ERR_IO, "cannot open '%s'", af->tmp);
		close(fd);
		unlink(af->tmp);
		free(af->path);
		free(af->tmp);
		memset(af, 0, sizeof *af);
		return ERR_IO;
	}
	return 0;
}

void afile_sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int afile_commit(struct afile *af, struct err *e)
{
	int rc = 0;
	if (!af->fp)
		return err_set(e, ERR_USAGE, "afile_commit on a closed file");
	if (af->in_place) {
		if (fflush(af->fp) != 0 || ferror(af->fp))
			rc = err_sys(e, ERR_IO, "cannot write '%s'", af->path);
		if (fclose(af->fp) != 0 && !rc)
			rc = err_sys(e, ERR_IO, "cannot close '%s'", af->path);
		af->fp = NULL;
		free(af->path);
		af->path = NULL;
		af->in_place = 0;
		return rc;
	}
	if (!af->tmp) {
		if (fflush(af->fp) != 0)
			rc = err_sys(e, ERR_IO, "cannot write to standard output");
		af->fp = NULL;
		free(af->path);
		af->path = NULL;
		return rc;
	}
	if (fflush(af->fp) != 0 || ferror(af->fp))
		rc = err_sys(e, ERR_IO, "cannot write '%s'", af->path);
	else if (fsync(fileno(af->fp)) != 0 && errno != EINVAL)
		rc = err_sys(e, ERR_IO, "cannot sync '%s'", af->path);
	if (fclose(af->fp) != 0 && !rc)
		rc = err_sys(e, ERR_IO, "cannot close '%s'", af->path);
	af->fp = NULL;
	if (!rc && rename(af->tmp, af->path) != 0)
		rc = err_sys(e, ERR_IO, "cannot rename '%s' to '%s'", af->tmp, af->path);
	if (rc)
		unlink(af->tmp);
	else
		afile_sync_parent(af->path);
	free(af->tmp);
	free(af->path);
	af->tmp = af->path = NULL;
	return rc;
}

void afile_abort(struct afile *af)
{
	if (af->fp && (af->tmp || af->in_place))
		fclose(af->fp);
	if (af->tmp)
		unlink(af->tmp);
	free(af->tmp);
	free(af->path);
	memset(af, 0, sizeof *af);
}

int afile_write_all(const char *path, const void *buf, size_t n, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	if (n && fwrite(buf, 1, n, af.fp) != n) {
		rc = err_sys(e, ERR_IO, "cannot write '%s'", path);
		afile_abort(&af);
		return rc;
	}
	return afile_commit(&af, e);
}

int afile_mkdirs(const char *dir, struct err *e)
{
	char buf[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof buf)
		return err_set(e, ERR_USAGE, "bad directory name '%s'", dir);
	memcpy(buf, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		char c = buf[i];
		buf[i] = 0;
		if (mkdir(buf, 0777) != 0 && errno != EEXIST)
			return err_sys(e, ERR_IO, "cannot create '%s'", buf);
		buf[i] = c;
	}
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return err_set(e, ERR_IO, "'%s' exists and is not a directory", dir);
	return 0;
}

int afile_lock(struct afile_lock *l, const char *path, const char *what, struct err *e)
{
	l->fd = -1;
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	size_t n = strlen(path) + 8;
	if (!(l->path = malloc(n)))
		return err_set(e, ERR_NOMEM, "out of memory");
	snprintf(l->path, n, "%.*s.%s.lock", (int)dirlen, path, path + dirlen);
	for (int tries = 0; tries < 8; tries++) {
		int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0) {
			int rc = err_sys(e, ERR_IO, "cannot create the lock '%s'", l->path);
			free(l->path);
			l->path = NULL;
			return rc;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			char who[256] = "";
			ssize_t k = pread(fd, who, sizeof who - 1, 0);
			who[k > 0 ? k : 0] = 0;
			char *nl = strchr(who, '\n');
			if (nl)
				*nl = 0;
			close(fd);
			int rc = err_set(e, ERR_IO, "'%s' is being written by another run (%s); wait for it to "
			                 "finish or write elsewhere", path, who[0] ? who : "its holder is unknown");
			free(l->path);
			l->path = NULL;
			return rc;
		}
		/* the holder before us may have removed the file after we opened
		 * it: then our lock is on a dead inode, and we try again */
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(l->path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			char host[256] = "?", line[512];
			gethostname(host, sizeof host - 1);
			time_t now = time(NULL);
			struct tm tm;
			localtime_r(&now, &tm);
			char when[32];
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
			int m = snprintf(line, sizeof line, "%s, pid %ld on %s, since %s\n", what, (long)getpid(),
			                 host, when);
			if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)m, 0) != m) {
				/* the lock holds without its note */
			}
			l->fd = fd;
			return 0;
		}
		close(fd);
	}
	int rc = err_set(e, ERR_IO, "cannot lock '%s': its lock file keeps changing", path);
	free(l->path);
	l->path = NULL;
	return rc;
}

void afile_unlock(struct afile_lock *l)
{
	if (l->fd >= 0) {
		unlink(l->path);
		close(l->fd);
	}
	free(l->path);
	l->path = NULL;
	l->fd = -1;
}
