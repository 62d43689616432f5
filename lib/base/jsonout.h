/* jsonout.h - JSON output helpers shared by the library and the tools. */
#ifndef WENO_JSONOUT_H
#define WENO_JSONOUT_H

#include <stdio.h>

/* Writes s as a JSON string literal (quotes included). */
void json_string(FILE *f, const char *s);

/* Writes v with 10 significant digits, or null when it is NaN or infinite
 * (JSON has neither). */
void json_number(FILE *f, double v);

#endif
