/* test_scoretab.c - the score-table reader's rules (formats/scores.md) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "../../lib/data/manifest.h"
#include "../../lib/data/scoretab.h"

static int read_text(const char *text, const char *scores, struct scoretab *t, struct err *e)
{
	char p[600];
	snprintf(p, sizeof p, "%s/s.tsv", check_tmpdir());
	FILE *f = fopen(p, "wb");
	fputs(text, f);
	fclose(f);
	return scoretab_read(t, p, "label", scores, e);
}

/* a byte-order mark before the header must not hide the kind column: bag
 * and instance rows stay apart */
static void test_bom_keeps_columns(void)
{
	struct scoretab t;
	struct err e = {0};
	int rc = read_text("\xef\xbb\xbfkind\tsplit\tlabel\tstudent_score\r\nbag\ttest\t1\t0.9\r\n"
	                   "instance\ttest\t0\t0.1\r\n", NULL, &t, &e);
	CHECK(rc == 0 && t.n == 2 && t.n_kinds == 2 && t.has_split && t.n_scores == 1 &&
	          !strcmp(t.kind_names[0], "bag") && !strcmp(t.kind_names[1], "instance"),
	      "%d %s (%d kinds)", rc, e.msg, t.n_kinds);
	scoretab_free(&t);
}

static void test_duplicate_columns(void)
{
	struct scoretab t;
	struct err e = {0};
	int rc = read_text("label\tscore\tscore\n1\t0.2\t0.9\n", NULL, &t, &e);
	CHECK(rc == ERR_FORMAT && strstr(e.msg, "column 'score' twice in the header (fields 2 and 3)"), "%d %s",
	      rc, e.msg);
	err_clear(&e);
	rc = read_text("label\tx_score\tlabel\n1\t0.2\t0\n", NULL, &t, &e);
	CHECK(rc == ERR_FORMAT && strstr(e.msg, "column 'label' twice"), "%d %s", rc, e.msg);
}

static void test_numbers(void)
{
	struct scoretab t;
	struct err e = {0};
	/* subnormal and tiny scores are numbers; NA is missing */
	int rc = read_text("label\tscore\n1\t4.9e-324\n0\t1e-310\n1\tNA\n0\t-2.5e-320\n", NULL, &t, &e);
	CHECK(rc == 0 && t.n == 4 && t.score[0][0] > 0 && t.score[0][1] > 0 && isnan(t.score[0][2]) &&
	          t.score[0][3] < 0,
	      "%d %s", rc, e.msg);
	scoretab_free(&t);
	static const char *bad[] = {"1e400", "-1e309", "inf", "nan", "0x", ""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char text[128];
		snprintf(text, sizeof text, "label\tscore\n1\t%s\n", bad[i]);
		err_clear(&e);
		rc = read_text(text, NULL, &t, &e);
		CHECK(rc == ERR_FORMAT && strstr(e.msg, "line 2, column score"), "'%s': %d %s", bad[i], rc, e.msg);
	}
}

/* rows of more than 256 fields are read whole, not cut */
static void test_wide_rows(void)
{
	static char text[8192];
	strcpy(text, "label");
	for (int i = 0; i < 300; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text), "\tc%d", i);
	strcat(text, "\tlast_score\n1");
	for (int i = 0; i < 300; i++)
		strcat(text, "\tx");
	strcat(text, "\t0.75\n");
	struct scoretab t;
	struct err e = {0};
	int rc = read_text(text, NULL, &t, &e);
	CHECK(rc == 0 && t.n == 1 && t.n_scores == 1 && t.score[0][0] == 0.75, "%d %s", rc, e.msg);
	scoretab_free(&t);
}

int main(void)
{
	RUN(test_bom_keeps_columns);
	RUN(test_duplicate_columns);
	RUN(test_numbers);
	RUN(test_wide_rows);
	return check_summary();
}
