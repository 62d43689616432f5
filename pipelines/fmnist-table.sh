#!/usr/bin/env bash
# pipelines/fmnist-table.sh OUT_PREFIX AUC_TSV...
# Builds the Fashion-MNIST-MIL table shaped like the paper's Table 1 from the
# results TSVs of auc-report --tsv (one per ratio, seed and method; the file
# name carries them: .../data-r<ratio>-s<seed>/<method>.auc.tsv for the model
# chosen on validation, <method>.last.auc.tsv for the last epoch).
# Instance AUC: the student's for WENO and the supervised baseline, the
# teacher's for ABMIL and DSMIL alone.  Bag AUC: the teacher's bag
# probability where there is a teacher, else the student's max-pooling.
# Where a WENO row has <method>.teacher_bag.auc.tsv beside it (weno-fit
# --keep-best teacher_bag: the epoch of the teacher's best validation bag AUC,
# the rule that picks the teachers alone), its bag AUC of the chosen epoch
# comes from there; its instance AUC stays the student's chosen epoch.
# Writes OUT_PREFIX.md and OUT_PREFIX.tsv.
#
# Where the score tables sit beside the results (<method>.scores.tsv,
# <method>.last.scores.tsv) and $BIN/auc-compare exists (BIN defaults to
# build/bin), each WENO − teacher delta also gets DeLong's paired test of the
# two models on the same test cases, per seed, combined over seeds by
# Stouffer's method (z = sum of the seeds' z / sqrt(seeds)): "(p …)" after
# the delta, two-sided.  Instance level: WENO's student against the plain
# teacher's attention; bag level: the two teachers' bag probabilities.
# Every delta also says in how many of the seeds that have both runs WENO's
# AUC is the higher ("k/n seeds"): the training's own noise, which DeLong's
# test does not see, shows there; and, with two seeds or more whose
# differences are not all equal, the two-sided p of the paired t-test of the
# per-seed differences ("paired t p"), which sees both: each seed draws its
# own bags and its own training.
set -euo pipefail
out=$1; shift
BIN=${BIN:-build/bin}
# runs made before the last-epoch scores existed have no .last.auc.tsv
files=()
for f in "$@"; do
	if [ -e "$f" ]; then files+=("$f"); elif [[ $f != *.last.auc.tsv ]]; then echo "$f: not found" >&2; exit 1; fi
done
# the WENO rows' teacher_bag results go first: awk then knows, reading the
# row's own results, that their bag AUC is taken
tb=()
for f in "${files[@]}"; do
	case $(basename "$f") in abmil-weno.auc.tsv | dsmil-weno.auc.tsv)
		t=${f%.auc.tsv}.teacher_bag.auc.tsv; [ -e "$t" ] && tb+=("$t") ;;
	esac
done
set -- ${tb[@]+"${tb[@]}"} "${files[@]}"

# the paired tests: rows "cmp ratio base level epoch z" in a file that awk
# reads first
cmp=$(mktemp "${TMPDIR:-/tmp}/fmnist-cmp.XXXXXX")
trap 'rm -f "$cmp" "$cmp.one"' EXIT
if [ -x "$BIN/auc-compare" ]; then
	for f in "$@"; do
		b=$(basename "$f")
		case $b in abmil-weno.auc.tsv | dsmil-weno.auc.tsv) e=best ext= ;;
		*-weno.teacher_bag.auc.tsv) continue ;;
		abmil-weno.last.auc.tsv | dsmil-weno.last.auc.tsv) e=last ext=.last ;;
		*) continue ;; esac
		d=$(dirname "$f"); m=${b%%.*}; base=${m%-weno}
		sa=$d/$m$ext.scores.tsv; sb=$d/$base$ext.scores.tsv
		[ -e "$sa" ] && [ -e "$sb" ] || continue
		r=$(basename "$d"); r=${r#data-r}; r=${r%-s*}
		for level in instance bag; do
			cols=teacher_score
			[ $level = instance ] && cols=student_score,teacher_score
			a=$sa
			[ $level = bag ] && [ $e = best ] && [ -e "$d/$m.teacher_bag.scores.tsv" ] && a=$d/$m.teacher_bag.scores.tsv
			"$BIN/auc-compare" -q --tsv "$cmp.one" --score-col "$cols" "$a" "$sb" >/dev/null 2>&1 || continue
			# z is NA where DeLong's variance is 0 (both AUCs 0 or 1): a sure sign
			awk -F'\t' -v r="$r" -v base="$base" -v level="$level" -v e="$e" '
				NR > 1 && $1 == level {
					z = $9
					if (z == "NA") z = $6 + 0 > 0 ? 40 : $6 + 0 < 0 ? -40 : 0
					print "cmp", r, base, level, e, z }' "$cmp.one"
		done
	done >"$cmp"
fi
awk -F'\t' -v OFS='\t' '
FILENAME == CMP { split($0, c, " "); zk = c[2] SUBSEP c[3] SUBSEP c[4] SUBSEP c[5]
                  zs[zk] += c[6]; zn[zk]++; next }
FNR == 1 { np = split(FILENAME, p, "/"); m = p[np]; sub(/\.auc\.tsv$/, "", m); d = p[np - 1];
           e = "best"; if (m ~ /\.last$/) { e = "last"; sub(/\.last$/, "", m) }
           tbag = 0; if (m ~ /\.teacher_bag$/) { tbag = 1; sub(/\.teacher_bag$/, "", m) }
           r = d; sub(/^data-r/, "", r); sub(/-s[0-9]+$/, "", r)
           sd_ = d; sub(/.*-s/, "", sd_); seeds[sd_] = 1; next }
{
	kind = $2; score = $3; auc = $4
	teacher = (m ~ /^(abmil|dsmil)$/)
	hasteacher = (m ~ /^(abmil|dsmil)/)
	if (kind == "instance" && ((teacher && score == "teacher_score") || (!teacher && score == "student_score"))) key = "inst"
	else if (kind == "bag" && ((hasteacher && score == "teacher_score") || (!hasteacher && score == "student_score"))) key = "bag"
	else next
	if (tbag && key != "bag") next
	if (key == "bag" && e == "best") {
		if (tbag) TB[r, m, sd_] = 1
		else if ((r, m, sd_) in TB) next
	}
	k = r SUBSEP m SUBSEP key SUBSEP e
	s[k] += auc; s2[k] += auc * auc; n[k]++; PS[k, sd_] = auc
	ratios[r] = 1; methods[m] = 1; if (e == "last") haslast = 1
}
END {
	nm = split("abmil abmil-weno dsmil dsmil-weno supervised meanpool maxpool", order, " ")
	ne = haslast ? 2 : 1; split("best last", ep, " ")
	printf "ratio\tmethod\tinstance_auc_mean\tinstance_auc_sd\tbag_auc_mean\tbag_auc_sd" > TSV
	if (haslast) printf "\tlast_instance_auc_mean\tlast_instance_auc_sd\tlast_bag_auc_mean\tlast_bag_auc_sd" > TSV
	printf "\tseeds\n" > TSV
	if (haslast) printf "| ratio | method | instance AUC | bag AUC | instance AUC, last epoch | bag AUC, last epoch | seeds |\n| --- | --- | --- | --- | --- | --- | --- |\n" > MD
	else printf "| ratio | method | instance AUC | bag AUC | seeds |\n| --- | --- | --- | --- | --- |\n" > MD
	nr = 0; for (r in ratios) rs[++nr] = r
	for (i = 1; i <= nr; i++) for (j = i + 1; j <= nr; j++) if (rs[j] + 0 < rs[i] + 0) { t = rs[i]; rs[i] = rs[j]; rs[j] = t }
	for (i = 1; i <= nr; i++) {
		r = rs[i]
		for (j = 1; j <= nm; j++) {
			m = order[j]; if (!(m in methods)) continue
			if (!(((r, m, "inst", "best") in n) || ((r, m, "bag", "best") in n))) continue
			line = r "\t" m; mdl = "| " r " | " m; cnt = 0
			for (x = 1; x <= ne; x++) for (q = 1; q <= 2; q++) {
				key = q == 1 ? "inst" : "bag"; k = r SUBSEP m SUBSEP key SUBSEP ep[x]
				if (!(k in n)) { line = line "\tNA\tNA"; mdl = mdl " | NA"; continue }
				mean = s[k] / n[k]; v = n[k] > 1 ? (s2[k] - n[k] * mean ^ 2) / (n[k] - 1) : 0
				sd = sqrt(v > 0 ? v : 0); if (x == 1) cnt = n[k]; M[r, m, key, ep[x]] = mean
				line = line "\t" mean "\t" sd; mdl = mdl " | " sprintf("%.4f ± %.4f", mean, sd)
			}
			print line "\t" cnt > TSV
			print mdl " | " cnt " |" > MD
		}
		for (t = 1; t <= 2; t++) {
			base = t == 1 ? "abmil" : "dsmil"
			if (!(((r, base "-weno", "inst", "best") in M) && ((r, base, "inst", "best") in M))) continue
			mdl = "| " r " | WENO − " toupper(base)
			for (x = 1; x <= ne; x++) for (q = 1; q <= 2; q++) {
				key = q == 1 ? "inst" : "bag"
				a = (r, base "-weno", key, ep[x]) in M; b = (r, base, key, ep[x]) in M
				zk = r SUBSEP base SUBSEP (q == 1 ? "instance" : "bag") SUBSEP ep[x]
				mdl = mdl " | " (a && b ? delta(M[r, base "-weno", key, ep[x]] - M[r, base, key, ep[x]]) : "NA")
				if (!(a && b)) continue
				ka = r SUBSEP base "-weno" SUBSEP key SUBSEP ep[x]; kb = r SUBSEP base SUBSEP key SUBSEP ep[x]
				up = 0; both = 0; ds = 0; ds2 = 0
				for (sd_ in seeds) if (((ka, sd_) in PS) && ((kb, sd_) in PS)) {
					both++; up += PS[ka, sd_] > PS[kb, sd_]
					dd = PS[ka, sd_] - PS[kb, sd_]; ds += dd; ds2 += dd * dd }
				# the paired t-test over seeds: training and test-set noise together
				tt = ""
				if (both >= 2) {
					dm = ds / both; dv = (ds2 - both * dm * dm) / (both - 1)
					if (dv > 1e-24) tt = "; paired t p " fmtp(tpval(dm / sqrt(dv / both), both - 1))
				}
				mdl = mdl " (" (zk in zn ? "p " pval(zs[zk] / sqrt(zn[zk])) "; " : "") up "/" both " seeds" tt ")"
			}
			print mdl " | |" > MD
		}
	}
}
# two-sided p of the Student t distribution with df degrees of freedom: the regularized
# incomplete beta I_x(df/2, 1/2) at x = df / (df + t^2)
function tpval(t, df) { return betai(df / 2, 0.5, df / (df + t * t)) }
function fmtp(p) { return p < 1e-300 ? "< 1e-300" : sprintf("%.2g", p > 1 ? 1 : p) }
# log Gamma by the Lanczos series (g = 7, nine terms), for x >= 0.5
function lgam(x,   c, a, i, t) {
	split("0.99999999999980993 676.5203681218851 -1259.1392167224028 771.32342877765313 -176.61502916214059 12.507343278686905 -0.13857109526572012 9.9843695780195716e-6 1.5056327351493116e-7", c, " ")
	x -= 1; a = c[1]; for (i = 1; i <= 8; i++) a += c[i + 1] / (x + i)
	t = x + 7.5
	return 0.5 * log(2 * 3.141592653589793) + (x + 0.5) * log(t) - t + log(a)
}
# I_x(a, b) by its continued fraction (modified Lentz), on the side where
# it converges fast
function betai(a, b, x,   f) {
	if (x <= 0) return 0
	if (x >= 1) return 1
	f = exp(lgam(a + b) - lgam(a) - lgam(b) + a * log(x) + b * log(1 - x))
	if (x < (a + 1) / (a + b + 2)) return f * betacf(a, b, x) / a
	return 1 - f * betacf(b, a, 1 - x) / b
}
function betacf(a, b, x,   m, m2, aa, c, d, h, del, tiny) {
	tiny = 1e-300; c = 1; d = 1 - (a + b) * x / (a + 1)
	if (d < tiny && d > -tiny) d = tiny
	d = 1 / d; h = d
	for (m = 1; m <= 300; m++) {
		m2 = 2 * m
		aa = m * (b - m) * x / ((a - 1 + m2) * (a + m2))
		d = 1 + aa * d; if (d < tiny && d > -tiny) d = tiny
		c = 1 + aa / c; if (c < tiny && c > -tiny) c = tiny
		d = 1 / d; h *= d * c
		aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2))
		d = 1 + aa * d; if (d < tiny && d > -tiny) d = tiny
		c = 1 + aa / c; if (c < tiny && c > -tiny) c = tiny
		d = 1 / d; del = d * c; h *= del
		if (del - 1 < 3e-16 && del - 1 > -3e-16) break
	}
	return h
}
function delta(x) { return sprintf("%+.4f", x < 5e-5 && x > -5e-5 ? 0 : x) }
# two-sided p of a standard normal z: erfc(|z|/sqrt 2), by the complementary
# error function of Numerical Recipes (relative error under 1.2e-7)
function pval(z,   x, t, y, k, c) {
	x = (z < 0 ? -z : z) / sqrt(2); t = 1 / (1 + 0.5 * x)
	split("-1.26551223 1.00002368 0.37409196 0.09678418 -0.18628806 0.27886807 -1.13520398 1.48851587 -0.82215223 0.17087277", c, " ")
	y = c[10]; for (k = 9; k >= 2; k--) y = c[k] + t * y
	y = t * exp(-x * x + c[1] + t * y)
	return y < 1e-300 ? "< 1e-300" : sprintf("%.2g", y > 1 ? 1 : y)
}
' TSV="$out.tsv.tmp" MD="$out.md.tmp" CMP="$cmp" "$cmp" "$@"
mv "$out.tsv.tmp" "$out.tsv"
mv "$out.md.tmp" "$out.md"
