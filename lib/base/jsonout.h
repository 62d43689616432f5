/* jsonout.h - JSON output helpers shared by the library and the tools. */
#ifndef WENO_JSONOUT_H
#define WENO_JSONOUT_H

#include <stdio.h>

/* Writes s as a JSON string literal (quotes included): control
 * characters escaped, and any byte that is not part of valid UTF-8 as
 * U+FFFD, so that the output is always valid JSON. */
void json_string(FILE *f, const char *s);

/* Writes s as one field of a TSV or text line: backslash, tab, newline
 * and carriage return as \\, \t, \n, \r, other control characters and
 * bytes that are not valid UTF-8 as \xHH, so that a field never breaks
 * its line or its columns. */
void text_field(FILE *f, const char *s);

/* Writes v with 10 significant digits, or null when it is NaN or infinite
 * (JSON has neither). */
void json_number(FILE *f, double v);

#endif
