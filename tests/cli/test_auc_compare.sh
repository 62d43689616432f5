# CLI tests of auc-compare: rows matched by kind, bag_id and index across two
# score tables; DeLong's paired test (its numbers are checked against the
# definition in tests/unit/test_metrics.c); bad input.
. "$(dirname "$0")/lib.sh"
H='kind\tbag_id\tindex\tlabel\tstudent_score\tteacher_score\tsplit\n'
# A: the student ranks every instance right; B: it ranks them backwards
{ printf "$H"
  for b in 0 1 2 3 4 5; do
	printf 'bag\tb%d\tNA\t%d\t0.%d\t0.5\ttest\n' $b $((b % 2)) $((b % 2 * 5 + b))
	for i in 0 1 2 3 4; do
		l=$(( b % 2 && i < 2 ))
		printf 'instance\tb%d\t%d\t%d\t%d.%d\t0.%d\ttest\n' $b $i $l $l $i $((i * 2))
	done
  done; } >"$T/a.tsv"
awk -F'\t' 'BEGIN { OFS = "\t" } NR > 1 && $1 == "instance" { $5 = -$5 } { print }' "$T/a.tsv" >"$T/b.tsv"

run "$BIN/auc-compare" "$T/a.tsv" "$T/a.tsv"
ok "a file against itself: no difference, p = 1" '[ $status = 0 ] && grep -q "^instance  *student_score  *student_score  *1.0000  *1.0000  *+0.0000" "$T/out" && grep "^instance  *student_score" "$T/out" | grep -q " 1  *"'
run "$BIN/auc-compare" "$T/a.tsv" "$T/b.tsv"
ok "A right, B backwards: A - B = +1 with p near 0" '[ $status = 0 ] && grep -q "^instance  *student_score  *student_score  *1.0000  *0.0000  *+1.0000" "$T/out"'
{ head -1 "$T/b.tsv"; tail -n +2 "$T/b.tsv" | sort -r; } >"$T/b_shuffled.tsv"
run "$BIN/auc-compare" "$T/a.tsv" "$T/b_shuffled.tsv"
cp "$T/out" "$T/out_shuffled"
run "$BIN/auc-compare" "$T/a.tsv" "$T/b.tsv"
ok "rows are matched by key, not by order" '[ $status = 0 ] && diff <(tail -n +4 "$T/out") <(tail -n +4 "$T/out_shuffled") >/dev/null'
run "$BIN/auc-compare" --score-col student_score,teacher_score "$T/a.tsv" "$T/b.tsv"
ok "--score-col A,B compares two different columns" '[ $status = 0 ] && grep -q "^instance  *student_score  *teacher_score " "$T/out" && ! grep -q "^instance  *teacher_score" "$T/out"'
run "$BIN/auc-compare" --json "$T/a.tsv" "$T/b.tsv"
ok "--json" '[ $status = 0 ] && python3 -c "import json,sys; d = json.load(open(sys.argv[1])); r = [x for x in d[\"results\"] if x[\"kind\"] == \"instance\" and x[\"score_a\"] == \"student_score\"][0]; assert r[\"diff\"] == 1 and r[\"p\"] < 1e-6 and d[\"matched_rows\"] == 36" "$T/out"'
grep -v 'b5' "$T/b.tsv" >"$T/b_part.tsv"
run "$BIN/auc-compare" "$T/a.tsv" "$T/b_part.tsv"
ok "rows only one file has: a note, the others compared" '[ $status = 0 ] && has_err "30 of 36 rows" && has_out "30 matched rows"'
awk -F'\t' 'BEGIN { OFS = "\t" } NR == 3 { $4 = 1 - $4 } { print }' "$T/b.tsv" >"$T/b_lab.tsv"
run "$BIN/auc-compare" "$T/a.tsv" "$T/b_lab.tsv"
ok "a case labelled differently: exit 1 naming bag and index" '[ $status = 1 ] && has_err "bag .b0. index .0. has label" && has_err "not the same cases"'
{ cat "$T/b.tsv"; tail -1 "$T/b.tsv"; } >"$T/b_dup.tsv"
run "$BIN/auc-compare" "$T/a.tsv" "$T/b_dup.tsv"
ok "a row twice in B: exit 1 naming both lines" '[ $status = 1 ] && has_err "line 38: the instance row of bag .b5. index 4 again, as on line 37"'
run "$BIN/auc-compare" "$T/b_dup.tsv" "$T/b.tsv"
ok "a row twice in A: exit 1 naming both lines" '[ $status = 1 ] && has_err "b_dup.tsv: line 38: the instance row"'
cut -f1,3- "$T/a.tsv" >"$T/nokey.tsv"
run "$BIN/auc-compare" "$T/a.tsv" "$T/nokey.tsv"
ok "no bag_id column: exit 1 saying how rows are matched" '[ $status = 1 ] && has_err "nokey.tsv: no bag_id column"'
sed 's/^\(instance\tb\)/\1x/; s/^\(bag\tb\)/\1x/' "$T/b.tsv" >"$T/b_other.tsv"
run "$BIN/auc-compare" "$T/a.tsv" "$T/b_other.tsv"
ok "no common case: exit 1" '[ $status = 1 ] && has_err "no row of"'
run "$BIN/auc-compare" "$T/a.tsv"
ok "one file: bad usage" '[ $status = 2 ]'
run "$BIN/auc-compare" --score-col , "$T/a.tsv" "$T/b.tsv"
ok "--score-col without a name: bad usage" '[ $status = 2 ] && has_err "expected A or A,B"'
run "$BIN/auc-compare" --split val "$T/a.tsv" "$T/b.tsv"
ok "no rows in the split: exit 1" '[ $status = 1 ] && has_err "no row of"'
run "$BIN/auc-compare" -q --tsv "$T/cmp.tsv" "$T/a.tsv" "$T/b.tsv"
ok "--tsv: the table still printed, one TSV row per level and score, atomically" '[ $status = 0 ] && has_out "DeLong" && [ "$(head -1 "$T/cmp.tsv")" = "$(printf "kind\tscore_a\tscore_b\tauc_a\tauc_b\tdiff\tdiff_lo\tdiff_hi\tz\tp\tn_pos\tn_neg")" ] && [ $(wc -l <"$T/cmp.tsv") = 5 ] && [ -z "$(ls "$T" | grep "cmp.tsv.")" ]'
run "$BIN/auc-compare" -q --json "$T/a.tsv" "$T/b.tsv"
ok "--tsv holds the numbers --json gives" 'python3 -c "
import csv, json, sys
j = {(r[\"kind\"], r[\"score_a\"]): r for r in json.load(open(sys.argv[1]))[\"results\"]}
rows = list(csv.DictReader(open(sys.argv[2]), delimiter=\"\t\"))
assert len(rows) == len(j) == 4
for t in rows:
    r = j[(t[\"kind\"], t[\"score_a\"])]
    for k in (\"auc_a\", \"auc_b\", \"diff\", \"z\", \"p\"):
        assert (t[k] == \"NA\") == (r[k] is None), (k, t[k], r[k])
        assert t[k] == \"NA\" or abs(float(t[k]) - r[k]) <= 1e-8 * max(1, abs(r[k])), (k, t[k], r[k])
    assert int(t[\"n_pos\"]) == r[\"n_pos\"] and int(t[\"n_neg\"]) == r[\"n_neg\"]
" "$T/out" "$T/cmp.tsv"'
awk -F'\t' 'BEGIN { OFS = "\t" } NR == 1 || $1 == "bag" || $4 == 0 { print }' "$T/a.tsv" >"$T/a_neg.tsv"
run "$BIN/auc-compare" -q --tsv "$T/neg.tsv" "$T/a_neg.tsv" "$T/a_neg.tsv"
ok "--tsv: NA where one class only" '[ $status = 0 ] && awk -F"\t" "\$1 == \"instance\" && \$4 == \"NA\" && \$10 == \"NA\" && \$11 == 0 {f = 1} END {exit !f}" "$T/neg.tsv"'
run "$BIN/auc-compare" -q --tsv "$T/no/such/dir/c.tsv" "$T/a.tsv" "$T/b.tsv"
ok "--tsv into a missing folder: exit 1 naming it" '[ $status = 1 ] && has_err "no/such/dir"'
# no silent caps: a column name of 64 bytes or more is looked up like any other (it was
# refused as bad usage, its buffer being 64 bytes)
long=$(printf 'x%.0s' $(seq 70))_score
run "$BIN/auc-compare" --score-col "$long" "$T/a.tsv" "$T/b.tsv"
ok "a long --score-col is a column not found, not bad usage" '[ $status = 1 ] && has_err "no score column ($long)"'
run "$BIN/auc-compare" --score-col "student_score,$long" "$T/a.tsv" "$T/b.tsv"
ok "a long B column too" '[ $status = 1 ] && has_err "b.tsv: .*($long)"'
