/* jsonout.c - see jsonout.h */
#include "jsonout.h"

#include <math.h>

/* The length of the valid UTF-8 sequence at p (1 to 4), or 0 when the
 * bytes there are not one (a stray continuation byte, a truncated or
 * overlong sequence, a surrogate, a code point past U+10FFFF). */
static int utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	int n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	for (int i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) || (c == 0xf0 && p[1] < 0x90) ||
	    (c == 0xf4 && p[1] >= 0x90))
		return 0;
	return n;
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; p && *p;) {
		int n = utf8_len(p);
		switch (n ? *p : 0) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		case 0:
			fputs("\\ufffd", f); /* not UTF-8: the replacement character */
			n = 1;
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fwrite(p, 1, (size_t)n, f);
		}
		p += n;
	}
	fputc('"', f);
}

void text_field(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p;) {
		int n = utf8_len(p);
		if (n == 1 && *p == '\\')
			fputs("\\\\", f);
		else if (n == 1 && *p == '\t')
			fputs("\\t", f);
		else if (n == 1 && *p == '\n')
			fputs("\\n", f);
		else if (n == 1 && *p == '\r')
			fputs("\\r", f);
		else if (!n || *p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fwrite(p, 1, (size_t)n, f);
		p += n ? n : 1;
	}
}

void json_number(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.10g", v);
	else
		fputs("null", f);
}
