/* img.c - see img.h */
#include "img.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "afile.h"

/* libpng's errors longjmp back here */
struct pngw {
	jmp_buf jb;
	char msg[256];
	png_structp png;
	png_infop info;
};

static void error_cb(png_structp png, png_const_charp msg)
{
	struct pngw *x = png_get_error_ptr(png);
	snprintf(x->msg, sizeof x->msg, "%s", msg);
	longjmp(x->jb, 1);
}

static void warning_cb(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static int write_fp(struct pngw *x, FILE *fp, const uint8_t *pix, uint32_t h, uint32_t w,
			uint32_t c)
{
	static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
				    PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
	x->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, x, error_cb, warning_cb);
	if (x->png)
		x->info = png_create_info_struct(x->png);
	if (!x->png || !x->info) {
		png_destroy_write_struct(&x->png, &x->info);
		snprintf(x->msg, sizeof x->msg, "out of memory");
		return ERR_NOMEM;
	}
	if (setjmp(x->jb)) {
		png_destroy_write_struct(&x->png, &x->info);
		return ERR_IO;
	}
	png_init_io(x->png, fp);
	png_set_IHDR(x->png, x->info, w, h, 8, types[c - 1], PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(x->png, x->info);
	for (uint32_t y = 0; y < h; y++)
		png_write_row(x->png, pix + (size_t)y * w * c);
	png_write_end(x->png, NULL);
	png_destroy_write_struct(&x->png, &x->info);
	return 0;
}

int img_write_png(const char *path, const uint8_t *pix, uint32_t h, uint32_t w, uint32_t c,
		  struct err *e)
{
	if (!pix || c < 1 || c > 4 || h == 0 || w == 0 || h > PNG_UINT_31_MAX ||
	    w > PNG_UINT_31_MAX / 4)
		return err_set(e, ERR_USAGE, "%s: cannot write a png of %ux%ux%u", path, h, w, c);
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	struct pngw x;
	memset(&x, 0, sizeof x);
	rc = write_fp(&x, af.fp, pix, h, w, c);
	if (rc) {
		afile_abort(&af);
		return err_set(e, rc, "cannot write '%s': png: %s", path, x.msg);
	}
	return afile_commit(&af, e);
}
