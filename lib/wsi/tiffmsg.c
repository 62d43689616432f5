/* tiffmsg.c - see tiffmsg.h */
#include "tiffmsg.h"

#include <stdio.h>

/* libtiff hands us its format string */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
int tiff_msg_keep(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	(void)tif;
	struct tiff_msg *m = user;
	if (m && !m->msg[0]) {
		char b[400];
		vsnprintf(b, sizeof b, fmt, ap);
		snprintf(m->msg, sizeof m->msg, "%s: %s", module ? module : "libtiff", b);
	}
	return 1;
}
#pragma GCC diagnostic pop
