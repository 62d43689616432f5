#!/usr/bin/env bash
# tests/cli/test_fmnist_table.sh - pipelines/fmnist-table.sh: the study's
# table from auc-report --tsv files (mean and sd over seeds, the WENO -
# teacher deltas with the count of seeds where WENO is higher, the chosen
# and the last epoch side by side).
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# auc FILE INST_SCORE INST_AUC BAG_SCORE BAG_AUC: a minimal auc-report --tsv
auc() {
	mkdir -p "$(dirname "$1")"
	{
		printf 'file\tkind\tscore\tauc\n'
		printf 'x\tbag\tstudent_score\t0.11\n'
		printf 'x\tbag\tteacher_score\t%s\n' "$5"
		printf 'x\tinstance\tstudent_score\t%s\n' "$3"
		printf 'x\tinstance\tteacher_score\t%s\n' "$3"
	} > "$1"
	if [ "$2" = student ]; then sed -i 's/^\(x\tinstance\tteacher_score\t\).*/\10.01/' "$1"; fi
	if [ "$2" = teacher ]; then sed -i 's/^\(x\tinstance\tstudent_score\t\).*/\10.01/' "$1"; fi
	if [ "$4" = student ]; then sed -i "s/^\(x\tbag\tstudent_score\t\).*/\1$5/" "$1"; fi
}
D=$T/study
auc $D/data-r0.1-s0/abmil.auc.tsv teacher 0.70 teacher 0.80
auc $D/data-r0.1-s1/abmil.auc.tsv teacher 0.80 teacher 0.90
auc $D/data-r0.1-s0/abmil-weno.auc.tsv student 0.90 teacher 0.85
auc $D/data-r0.1-s1/abmil-weno.auc.tsv student 0.90 teacher 0.85
auc $D/data-r0.05-s0/supervised.auc.tsv student 0.95 student 0.97
auc $D/data-r0.1-s0/abmil.last.auc.tsv teacher 0.60 teacher 0.70
auc $D/data-r0.1-s0/abmil-weno.last.auc.tsv student 0.65 teacher 0.75

run bash "$ROOT/pipelines/fmnist-table.sh" $T/t $D/*/abmil.auc.tsv $D/*/abmil-weno.auc.tsv \
	$D/*/supervised.auc.tsv
ok "table: mean and sd over two seeds" '[ $status = 0 ] && grep -q "^| 0.1 | abmil | 0.7500 ± 0.0707 | 0.8500 ± 0.0707 | 2 |$" $T/t.md'
ok "table: the student's instance AUC for WENO, teacher bag AUC" 'grep -q "^| 0.1 | abmil-weno | 0.9000 ± 0.0000 | 0.8500 ± 0.0000 | 2 |$" $T/t.md'
# paired t over the seeds, one degree of freedom: p = 1 - 2 atan(|t|) / pi; instance
# differences 0.2 and 0.1 give t = 3 (p 0.2048), bag differences +-0.05 t = 0 (p 1)
ok "table: WENO - ABMIL delta, in how many seeds WENO is higher, the paired t-test" 'grep -q "^| 0.1 | WENO − ABMIL | +0.1500 (2/2 seeds; paired t p 0.2) | +0.0000 (1/2 seeds; paired t p 1) | |$" $T/t.md'
ok "table: supervised uses the student's max-pooling bag score; ratios sorted" \
	'grep -q "^| 0.05 | supervised | 0.9500 ± 0.0000 | 0.9700 ± 0.0000 | 1 |$" $T/t.md && [ "$(grep -c "^| 0.05" $T/t.md)" = 1 ] && grep -n "^| 0.05" $T/t.md | grep -q "^3:"'
ok "table: TSV twin" '[ "$(sed -n 2p $T/t.tsv | cut -f1-4)" = "$(printf "0.05\tsupervised\t0.95\t0")" ]'
ok "table: no temporaries left" '[ -z "$(ls $T | grep tmp)" ]'

run bash "$ROOT/pipelines/fmnist-table.sh" $T/u $D/data-r0.1-s0/*.auc.tsv
ok "table: last-epoch columns beside the chosen epoch" '[ $status = 0 ] && grep -q "last epoch" $T/u.md && grep -q "^| 0.1 | abmil | 0.7000 ± 0.0000 | 0.8000 ± 0.0000 | 0.6000 ± 0.0000 | 0.7000 ± 0.0000 | 1 |$" $T/u.md'
ok "table: last-epoch deltas" 'grep -q "^| 0.1 | WENO − ABMIL | +0.2000 (1/1 seeds) | +0.0500 (1/1 seeds) | +0.0500 (1/1 seeds) | +0.0500 (1/1 seeds) | |$" $T/u.md'
run bash "$ROOT/pipelines/fmnist-table.sh" $T/v $D/data-r0.1-s1/abmil.auc.tsv $D/data-r0.1-s1/abmil.last.auc.tsv
ok "table: a missing last-epoch file is skipped" '[ $status = 0 ] && ! grep -q "last epoch" $T/v.md && grep -q "^| 0.1 | abmil | 0.8000" $T/v.md'
run bash "$ROOT/pipelines/fmnist-table.sh" $T/w $D/data-r0.1-s1/nothing.auc.tsv
ok "table: a missing results file is an error" '[ $status = 1 ] && has_err "nothing.auc.tsv: not found" && [ ! -e $T/w.md ]'
ok "table: no paired test without score tables" '! grep -q "(p " $T/t.md'

# with the score tables beside the results: DeLong's paired test, one seed
# (auc-compare's p) and two identical seeds (Stouffer: z times sqrt 2)
scores() { # FILE: 4 bags of 5 instances; $2 = right|backwards for the student
	{ printf 'kind\tbag_id\tindex\tlabel\tstudent_score\tteacher_score\tsplit\n'
	  for b in 0 1 2 3 4 5 6 7; do
		printf 'bag\tb%d\tNA\t%d\t0.5\t0.%d\ttest\n' $b $((b % 2)) $((b % 2 * 4 + b))
		for i in 0 1 2 3 4; do
			l=$(( b % 2 && i < 2 )); v=$l.$i; [ "$2" = backwards ] && v=-$v
			printf 'instance\tb%d\t%d\t%d\t%s\t%s\ttest\n' $b $i $l "$v" "0.$(( (i * 7 + b * 3) % 10 ))"
		done
	  done; } >"$1"
}
E=$T/cmp
for s in 0 1; do
	auc $E/data-r0.2-s$s/abmil.auc.tsv teacher 0.40 teacher 0.50
	auc $E/data-r0.2-s$s/abmil-weno.auc.tsv student 1.00 teacher 0.90
	scores $E/data-r0.2-s$s/abmil-weno.scores.tsv right
	scores $E/data-r0.2-s$s/abmil.scores.tsv backwards
done
run env BIN="$BIN" bash "$ROOT/pipelines/fmnist-table.sh" $T/p1 $E/data-r0.2-s0/*.auc.tsv
p1=$("$BIN/auc-compare" --json --score-col student_score,teacher_score $E/data-r0.2-s0/abmil-weno.scores.tsv $E/data-r0.2-s0/abmil.scores.tsv | grep -o '"kind":"instance"[^}]*' | sed 's/.*"p":\([^,]*\),.*/\1/')
ok "table: the delta row carries auc-compare's paired p" '[ $status = 0 ] && grep "^| 0.2 | WENO − ABMIL |" $T/p1.md | grep -q "(p $(printf %.2g "$p1"); 1/1 seeds)"'
run env BIN="$BIN" bash "$ROOT/pipelines/fmnist-table.sh" $T/p2 $E/*/*.auc.tsv
z1=$("$BIN/auc-compare" --json --score-col student_score,teacher_score $E/data-r0.2-s0/abmil-weno.scores.tsv $E/data-r0.2-s0/abmil.scores.tsv | grep -o '"kind":"instance"[^}]*' | sed 's/.*"z":\([^,]*\),.*/\1/')
p2=$(python3 -c "import math,sys; print('%.2g' % math.erfc(abs(float(sys.argv[1])) * math.sqrt(2) / math.sqrt(2)))" "$z1")
ok "table: two seeds combine by Stouffer" '[ $status = 0 ] && grep "^| 0.2 | WENO − ABMIL |" $T/p2.md | grep -q "(p $p2; 2/2 seeds)"'
grep "WENO" $T/p1.md $T/p2.md | sed "s/^/# /"

# a WENO row with <method>.teacher_bag.auc.tsv beside it (--keep-best
# teacher_bag): the chosen epoch's bag AUC comes from there, the instance AUC
# and the last epoch from the row's own files; rows without it are as before
G=$T/tb
auc $G/data-r0.1-s0/abmil.auc.tsv teacher 0.70 teacher 0.80
auc $G/data-r0.1-s1/abmil.auc.tsv teacher 0.80 teacher 0.90
auc $G/data-r0.1-s0/abmil-weno.auc.tsv student 0.90 teacher 0.40
auc $G/data-r0.1-s1/abmil-weno.auc.tsv student 0.90 teacher 0.85
auc $G/data-r0.1-s0/abmil-weno.teacher_bag.auc.tsv student 0.30 teacher 0.95
auc $G/data-r0.1-s0/abmil-weno.last.auc.tsv student 0.65 teacher 0.75
auc $G/data-r0.1-s0/abmil.last.auc.tsv teacher 0.60 teacher 0.70
run bash "$ROOT/pipelines/fmnist-table.sh" $T/tb $G/*/abmil.auc.tsv $G/*/abmil-weno.auc.tsv
ok "table: a WENO row's bag AUC from its teacher_bag model, seed by seed" '[ $status = 0 ] && grep -q "^| 0.1 | abmil-weno | 0.9000 ± 0.0000 | 0.9000 ± 0.0707 | 2 |$" $T/tb.md'
# bag differences 0.15 and -0.05: t = 0.5, p = 1 - 2 atan(0.5) / pi = 0.7048
ok "table: the teacher_bag delta counts seeds the same way" 'grep -q "^| 0.1 | WENO − ABMIL | +0.1500 (2/2 seeds; paired t p 0.2) | +0.0500 (1/2 seeds; paired t p 0.7) | |$" $T/tb.md'
run bash "$ROOT/pipelines/fmnist-table.sh" $T/tc $G/data-r0.1-s0/abmil.auc.tsv $G/data-r0.1-s0/abmil-weno.auc.tsv \
	$G/data-r0.1-s0/abmil.last.auc.tsv $G/data-r0.1-s0/abmil-weno.last.auc.tsv
ok "table: the last epoch stays the last model's" '[ $status = 0 ] && grep -q "^| 0.1 | abmil-weno | 0.9000 ± 0.0000 | 0.9500 ± 0.0000 | 0.6500 ± 0.0000 | 0.7500 ± 0.0000 | 1 |$" $T/tc.md'

# three seeds, two degrees of freedom: p = 1 - |t| / sqrt(t^2 + 2); instance differences
# 0.10, 0.20, 0.30 give t = 0.2 / (0.1 / sqrt 3) = 3.4641, p 0.07418
H=$T/t3
for s in 0 1 2; do
	auc $H/data-r0.5-s$s/dsmil.auc.tsv teacher 0.5$s teacher 0.6
	auc $H/data-r0.5-s$s/dsmil-weno.auc.tsv student $(echo "0.60 0.71 0.82" | cut -d" " -f$((s + 1))) teacher 0.6
done
run bash "$ROOT/pipelines/fmnist-table.sh" $T/t3 $H/*/*.auc.tsv
ok "table: the paired t-test over three seeds" '[ $status = 0 ] && grep -q "^| 0.5 | WENO − DSMIL | +0.2000 (3/3 seeds; paired t p 0.074) | +0.0000 (0/3 seeds) | |$" $T/t3.md'
rm -rf "$T"
