# CLI tests of auc-report.
. "$(dirname "$0")/lib.sh"
S="$T/s.tsv"
{
printf 'kind\tsplit\tbag_id\tindex\tx\ty\tlabel\tstudent_score\tteacher_score\n'
printf 'bag\ttest\ta\tNA\tNA\tNA\t1\t0.9\t0.8\n'
printf 'bag\ttest\tb\tNA\tNA\tNA\t0\t0.2\t0.85\n'
printf 'bag\ttest\tc\tNA\tNA\tNA\t1\t0.7\tNA\n'
printf 'bag\ttest\td\tNA\tNA\tNA\t0\t0.7\t0.1\n'
printf 'bag\tval\te\tNA\tNA\tNA\t1\t0.6\t0.5\n'
printf 'bag\tval\tf\tNA\tNA\tNA\t0\t0.3\t0.4\n'
printf 'instance\ttest\ta\t0\t0\t0\t0.3\t0.9\t1.5\n'
printf 'instance\ttest\ta\t1\t0\t0\t0\t0.1\t-2\n'
printf 'instance\ttest\tb\t0\t0\t0\tNA\t0.5\t0\n'
printf 'instance\ttest\tb\t1\t0\t0\t1\t0.4\t0.2\n'
} >"$S"
run "$BIN/auc-report" -b 200 "$S"
# bag student: positives 0.9, 0.7 vs negatives 0.2, 0.7 -> (1 + 1 + 1 + 0.5)/4 = 0.875
ok "bag AUC with a tie" '[ $status = 0 ] && grep -q "^bag  *student_score  *0.8750" "$T/out"'
# instance student at 0.5: positive 0.4 vs negatives 0.9, 0.1 -> 0.5; at 0.25 the 0.3 row (0.9) is positive too -> 1
ok "instance AUC at the default 0.5" 'grep -q "^instance  *student_score  *0.5000" "$T/out"'
run "$BIN/auc-report" -b 0 --pos-threshold 0.25 "$S"
ok "instance AUC at 0.25" '[ $status = 0 ] && grep -q "^instance  *student_score  *1.0000" "$T/out"'
ok "Youden threshold from val" 'grep -q "^bag  *student_score .* 0.6 " "$T/out"'
run "$BIN/auc-report" --json -b 100 "$S" "$S"
ok "json with summary over two files" '[ $status = 0 ] && has_out "\"summary\":\[{\"kind\":\"bag\",\"score\":\"student_score\",\"files\":2,\"mean_auc\":0.875"'
run "$BIN/auc-report" -b 0 --roc-tsv "$T/roc.tsv" --roc-svg "$T/roc.svg" --tsv "$T/res.tsv" "$S"
ok "ROC TSV, SVG and results TSV" '[ $status = 0 ] && grep -q "^$S	bag	student_score	" "$T/roc.tsv" && grep -q "<polyline" "$T/roc.svg" && [ $(wc -l <"$T/res.tsv") = 5 ]'
sed 's/0\.85/abc/' "$S" >"$T/bad.tsv"
run "$BIN/auc-report" "$T/bad.tsv"
ok "non-numeric score: exit 1, names line and column" '[ $status = 1 ] && has_err "bad.tsv: line 3, column teacher_score: .abc."'
sed 's/0\.85/nan/' "$S" >"$T/nan.tsv"
run "$BIN/auc-report" "$T/nan.tsv"
ok "NaN score is an error" '[ $status = 1 ] && has_err "nan.tsv: line 3"'
{ printf 'kind\tlabel\tstudent_score\n'; for i in 1 2 3 4 5 6 7 8 9 10; do
	printf 'a_kind_name_of_more_than_thirty_one_characters\t%d\t0.%d\n' $((i % 2)) "$i"; done; } >"$T/long.tsv"
run "$BIN/auc-report" "$T/long.tsv"
ok "a kind name too long: exit 1 naming line 2 and the column (not 'more than 8 kinds')" \
	'[ $status = 1 ] && has_err "long.tsv: line 2, column kind: .a_kind_name" && ! has_err "more than 8"'
run "$BIN/auc-report" --label-col truth "$S"
ok "missing label column" '[ $status = 1 ] && has_err "no column .truth."'
run "$BIN/auc-report" --split train "$S"
ok "no rows in the split" '[ $status = 1 ] && has_err "no rows with split .train."'
printf 'y\tprob\n1\t0.8\n0\t0.3\n1\t0.2\n0\t0.1\n' >"$T/generic.tsv"
run "$BIN/auc-report" -b 0 --label-col y --score-col prob --split all "$T/generic.tsv"
ok "any TSV with a label and a score" '[ $status = 0 ] && grep -q "^all  *prob  *0.7500" "$T/out"'
run "$BIN/auc-report" "$T/missing.tsv" "$S"
ok "one unreadable file: others reported, exit 1" '[ $status = 1 ] && has_out "student_score" && has_err "missing.tsv"'
run "$BIN/auc-report" --pos-threshold 2 "$S"
ok "bad option value exits 2" '[ $status = 2 ]'
# no silent caps: 3 levels x 6 scores are 18 ROC curves (16 were drawn), and 70 files
# with a score of their own each are 70 summaries (64 were kept)
python3 - "$T" <<'PY'
import random, sys
d = sys.argv[1]; rnd = random.Random(5)
with open(f"{d}/wide.tsv", "w") as f:
    f.write("kind\tlabel\t" + "\t".join(f"{c}_score" for c in "abcdef") + "\n")
    for kind in ("bag", "instance", "patch"):
        for i in range(20):
            f.write(f"{kind}\t{i % 2}\t" + "\t".join("%.3f" % rnd.random() for _ in "abcdef") + "\n")
for k in range(70):
    with open(f"{d}/run{k:02d}.tsv", "w") as f:
        f.write(f"label\tm{k:02d}_score\n" + "".join(f"{i % 2}\t{rnd.random():.3f}\n" for i in range(10)))
PY
run "$BIN/auc-report" -b 0 --split all --roc-svg "$T/wide.svg" "$T/wide.tsv"
ok "18 ROC curves drawn, not 16" '[ $status = 0 ] && [ $(grep -c "<polyline" "$T/wide.svg") = 18 ] && grep -q "patch f_score (AUC" "$T/wide.svg"'
run "$BIN/auc-report" -b 0 --split all --json "$T"/run*.tsv
ok "70 summaries over 70 files, not 64" '[ $status = 0 ] && python3 -c "import json,sys; s = json.load(open(sys.argv[1]))[\"summary\"]; assert len(s) == 70 and s[69][\"score\"] == \"m69_score\", len(s)" "$T/out"'
run "$BIN/auc-report" -b 0 --split all "$T"/run*.tsv
ok "the table's summary has 70 rows too" '[ $status = 0 ] && [ $(grep -c "^all  *m[0-9]*_score  *[0-9.]* ± " "$T/out") = 70 ]'
# every score NA: nothing to compute is a failure, said
printf 'kind\tsplit\tlabel\tstudent_score\nbag\ttest\t1\tNA\nbag\ttest\t0\tNA\n' >"$T/na.tsv"
run "$BIN/auc-report" -b 0 "$T/na.tsv"
ok "every score NA: exit 1, said" '[ $status = 1 ] && has_err "na.tsv: nothing to compute: every score"'
# a report that cannot be written in full is a failure
printf 'kind\tsplit\tlabel\tstudent_score\nbag\ttest\t1\t0.9\nbag\ttest\t0\t0.1\n' >"$T/ok.tsv"
"$BIN/auc-report" -b 0 "$T/ok.tsv" >/dev/full 2>"$T/err"
status=$?
ok "stdout on a full disk: exit 1, said" '[ $status = 1 ] && has_err "cannot write to standard output"'
run "$BIN/auc-report" -b 0 --tsv "$T/ok.tsv" "$T/ok.tsv"
ok "--tsv onto the scores file: refused, the file intact" '[ $status != 0 ] && has_err "it is the input" && grep -q "^bag	test	1	0.9$" "$T/ok.tsv"'
rm -rf "$T"
