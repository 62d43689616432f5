/* tiffmsg.h - libtiff's error and warning messages kept, not printed.
 *
 *   struct tiff_msg tm = {{0}};
 *   TIFFOpenOptionsSetErrorHandlerExtR(o, tiff_msg_keep, &tm);   first error kept
 *   TIFFOpenOptionsSetWarningHandlerExtR(o, tiff_msg_keep, NULL); warnings dropped
 *
 * so a failure can be reported once, with the file's name, by our err.
 */
#ifndef WENO_TIFFMSG_H
#define WENO_TIFFMSG_H

#include <stdarg.h>
#include <tiffio.h>

struct tiff_msg {
	char msg[512]; /* "module: text" of the first message; empty if none */
};

/* A libtiff handler: keeps the first message in user (a struct tiff_msg),
 * or drops it when user is NULL. */
int tiff_msg_keep(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap);

#endif
