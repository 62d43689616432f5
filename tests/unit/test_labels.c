/* test_labels.c - the labels CSV (lib/data/labels.h): its rules, and the
 * validation split by patient */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "../../lib/data/labels.h"
#include "../../lib/data/manifest.h"

static int read_text(const char *text, struct labels *l, struct err *e)
{
	char p[600];
	snprintf(p, sizeof p, "%s/labels.csv", check_tmpdir());
	FILE *f = fopen(p, "wb");
	fputs(text, f);
	fclose(f);
	struct labels_opts o = {"tumor", "normal", SPLIT_TRAIN};
	return labels_read(l, p, &o, e);
}

static void test_rules(void)
{
	struct labels l;
	struct err e = {0};
	/* a BOM, CR LF, quotes, spaces, names for labels, columns in any order */
	int rc = read_text("\xef\xbb\xbf" "split,label,slide_id,case_id\r\n"
	                   "test, tumor ,\"s,1\",P1\r\n,normal,s2,\r\nval,1,\"s\"\"3\",P3\r\n", &l, &e);
	CHECK(rc == 0 && l.n == 3 && !strcmp(l.rows[0].slide_id, "s,1") && l.rows[0].label == 1 &&
	          l.rows[0].split == SPLIT_TEST && !strcmp(l.rows[0].case_id, "P1") && l.rows[1].split == SPLIT_TRAIN &&
	          !l.rows[1].case_id && !strcmp(l.rows[2].slide_id, "s\"3") && l.rows[2].line == 4 && l.has_cases,
	      "%d %s", rc, e.msg);
	labels_free(&l);
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"slide_id,label\na,1\nb,0\na,0\n", "line 4: slide 'a' again, as on line 2, with the other label"},
		{"slide_id,label\na,1\na,1\n", "line 3: slide 'a' again, as on line 2"},
		{"slide_id,label\n../etc/passwd,1\n", "column slide_id: '../etc/passwd' holds a '/'"},
		{"slide_id,label\n..,1\n", "'..' is not a file name"},
		{"slide_id,label\n,1\n", "'' is empty"},
		{"slide_id,label,case_id,split\na,1,P,train\nb,1,P,test\n",
		 "case 'P' has slides in train (line 2) and in test (line 3)"},
		{"slide_id,label,label\na,1,1\n", "column 'label' twice"},
		{"slide_id,lab\na,1\n", "header needs the columns slide_id and label"},
		{"slide_id,label\na,maybe\n", "line 2, column label: 'maybe'"},
		{"slide_id,label\na,1,2\n", "line 2: 3 columns, the header has 2"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err_clear(&e);
		rc = read_text(bad[i].text, &l, &e);
		CHECK(rc == ERR_FORMAT && strstr(e.msg, bad[i].want), "case %zu: %d %s", i, rc, e.msg);
	}
}

/* 30 patients of 1 to 4 slides, half positive: no patient straddles the
 * splits, about the fraction of patients of each label goes to val */
static void test_val_by_case(void)
{
	char text[1 << 14] = "slide_id,label,case_id\n";
	int slides = 0;
	for (int p = 0; p < 30; p++)
		for (int s = 0; s <= p % 4; s++, slides++)
			snprintf(text + strlen(text), sizeof text - strlen(text), "p%d_s%d,%d,P%d\n", p, s, p % 2, p);
	struct labels l;
	struct err e = {0};
	REQUIRE(read_text(text, &l, &e) == 0, "%s", e.msg);
	REQUIRE(labels_assign_val(&l, 0.2, 7, &e) == 0, "%s", e.msg);
	int val_cases[2] = {0, 0};
	for (size_t i = 0; i < l.n; i++)
		for (size_t j = 0; j < l.n; j++)
			CHECK(strcmp(l.rows[i].case_id, l.rows[j].case_id) || l.rows[i].split == l.rows[j].split,
			      "%s and %s of one patient in two splits", l.rows[i].slide_id, l.rows[j].slide_id);
	for (size_t i = 0; i < l.n; i++)
		if (l.rows[i].split == SPLIT_VAL && strstr(l.rows[i].slide_id, "_s0"))
			val_cases[l.rows[i].label]++;
	/* 15 patients a label, 0.2 of them: 3 each */
	CHECK(val_cases[0] == 3 && val_cases[1] == 3, "val patients %d negative, %d positive", val_cases[0],
	      val_cases[1]);
	/* the same seed, the same draw */
	struct labels m;
	REQUIRE(read_text(text, &m, &e) == 0 && labels_assign_val(&m, 0.2, 7, &e) == 0, "%s", e.msg);
	int same = 1;
	for (size_t i = 0; i < l.n; i++)
		same &= l.rows[i].split == m.rows[i].split;
	CHECK(same, "another draw with the same seed");
	labels_free(&l);
	labels_free(&m);
	(void)slides;
}

/* without case ids each slide is a patient: 10 of 50 per label */
static void test_val_by_slide(void)
{
	char text[4096] = "slide_id,label\n";
	for (int s = 0; s < 100; s++)
		snprintf(text + strlen(text), sizeof text - strlen(text), "s%d,%d\n", s, s % 2);
	struct labels l;
	struct err e = {0};
	REQUIRE(read_text(text, &l, &e) == 0 && labels_assign_val(&l, 0.2, 1, &e) == 0, "%s", e.msg);
	int v[2] = {0, 0};
	for (size_t i = 0; i < l.n; i++)
		v[l.rows[i].label] += l.rows[i].split == SPLIT_VAL;
	CHECK(v[0] == 10 && v[1] == 10, "val %d negative, %d positive", v[0], v[1]);
	labels_free(&l);
}

int main(void)
{
	RUN(test_rules);
	RUN(test_val_by_case);
	RUN(test_val_by_slide);
	return check_summary();
}
