/* textfile.c - see textfile.h */
#include "textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

int textfile_check_regular(const char *path, struct err *e)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_IO, "cannot read '%s': %s, expected a regular file", path,
		               kind_of(st.st_mode));
	return 0;
}

FILE *textfile_fopen(const char *path, struct err *e)
{
	/* O_NONBLOCK: opening a FIFO for reading must not wait for a writer */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err_sys(e, ERR_IO, "cannot open '%s'", path);
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		err_sys(e, ERR_IO, "cannot open '%s'", path);
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(e, ERR_IO, "cannot read '%s': %s, expected a regular file", path, kind_of(st.st_mode));
		close(fd);
		return NULL;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		err_sys(e, ERR_IO, "cannot open '%s'", path);
		close(fd);
	}
	return f;
}

int textfile_open(struct textfile *t, const char *path, int allow_stdin, struct err *e)
{
	memset(t, 0, sizeof *t);
	t->path = path;
	t->max = TEXTFILE_LINE_MAX;
	if (allow_stdin && !strcmp(path, "-")) {
		t->f = stdin;
		t->is_stdin = 1;
		return 0;
	}
	t->f = textfile_fopen(path, e);
	return t->f ? 0 : ERR_IO;
}

int textfile_next(struct textfile *t, struct err *e)
{
	t->len = 0;
	if (!t->cap) {
		t->cap = 4096;
		if (!(t->line = malloc(t->cap)))
			return err_set(e, ERR_NOMEM, "out of memory reading '%s'", t->path);
	}
	int any = 0;
	for (;;) {
		if (t->cap - t->len < 2) {
			if (t->len > t->max + 1) { /* room for a CR LF past the limit */
				t->lineno++;
				return err_set(e, ERR_LIMIT, "%s: line %ld: longer than %zu bytes, expected a line "
				               "of text", t->path, t->lineno, t->max);
			}
			size_t nc = t->cap * 2;
			char *q = realloc(t->line, nc);
			if (!q)
				return err_set(e, ERR_NOMEM, "out of memory reading '%s'", t->path);
			t->line = q;
			t->cap = nc;
		}
		size_t room = t->cap - t->len;
		if (!fgets(t->line + t->len, room > INT_MAX ? INT_MAX : (int)room, t->f))
			break;
		any = 1;
		size_t n = strlen(t->line + t->len);
		t->len += n;
		if (t->len && t->line[t->len - 1] == '\n')
			break;
		if (n + 1 < (room > INT_MAX ? INT_MAX : room) && !feof(t->f)) {
			/* fgets stopped before the buffer's end without a newline: a NUL byte */
			t->lineno++;
			return err_set(e, ERR_FORMAT, "%s: line %ld: a NUL byte, expected text", t->path,
			               t->lineno);
		}
	}
	if (ferror(t->f))
		return err_sys(e, ERR_IO, "cannot read '%s'", t->path);
	if (!any)
		return 0;
	t->lineno++;
	if (t->len > t->max)
		return err_set(e, ERR_LIMIT, "%s: line %ld: longer than %zu bytes, expected a line of text",
		               t->path, t->lineno, t->max);
	if (t->len && t->line[t->len - 1] == '\n')
		t->line[--t->len] = 0;
	if (t->len && t->line[t->len - 1] == '\r')
		t->line[--t->len] = 0;
	if (t->lineno == 1 && t->len >= 3 && !memcmp(t->line, "\xef\xbb\xbf", 3)) {
		memmove(t->line, t->line + 3, t->len - 2);
		t->len -= 3;
	}
	return 1;
}

void textfile_close(struct textfile *t)
{
	if (t->f && !t->is_stdin)
		fclose(t->f);
	free(t->line);
	memset(t, 0, sizeof *t);
}
