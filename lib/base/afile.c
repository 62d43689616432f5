/* afile.c - see afile.h */
#include "afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	size_t n = strlen(path) + 16;
	af->path = strdup(path);
	af->tmp = malloc(n);
	if (!af->path || !af->tmp) {
		free(af->path);
		free(af->tmp);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	snprintf(af->tmp, n, "%.*s.%s.tmp-XXXXXX", (int)dirlen, path, base);
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
