#!/usr/bin/env bash
# pipelines/fmnist-table.sh OUT_PREFIX AUC_TSV...
# Builds the Fashion-MNIST-MIL table shaped like the paper's Table 1 from the
# results TSVs of auc-report --tsv (one per ratio, seed and method; the file
# name carries them: .../data-r<ratio>-s<seed>/<method>.auc.tsv).
# Instance AUC: the student's for WENO and the supervised baseline, the
# teacher's for ABMIL and DSMIL alone.  Bag AUC: the teacher's bag
# probability where there is a teacher, else the student's max-pooling.
# Writes OUT_PREFIX.md and OUT_PREFIX.tsv.
set -euo pipefail
out=$1; shift
awk -F'\t' -v OFS='\t' '
FNR == 1 { np = split(FILENAME, p, "/"); m = p[np]; sub(/\.auc\.tsv$/, "", m); d = p[np - 1];
           r = d; sub(/^data-r/, "", r); sub(/-s[0-9]+$/, "", r); next }
{
	kind = $2; score = $3; auc = $4
	teacher = (m ~ /^(abmil|dsmil)$/)
	hasteacher = (m ~ /^(abmil|dsmil)/)
	if (kind == "instance" && ((teacher && score == "teacher_score") || (!teacher && score == "student_score"))) key = "inst"
	else if (kind == "bag" && ((hasteacher && score == "teacher_score") || (!hasteacher && score == "student_score"))) key = "bag"
	else next
	k = r SUBSEP m SUBSEP key
	s[k] += auc; s2[k] += auc * auc; n[k]++
	ratios[r] = 1; methods[m] = 1
}
END {
	nm = split("abmil abmil-weno dsmil dsmil-weno supervised meanpool maxpool", order, " ")
	print "ratio", "method", "instance_auc_mean", "instance_auc_sd", "bag_auc_mean", "bag_auc_sd", "seeds" > TSV
	printf "| ratio | method | instance AUC | bag AUC | seeds |\n| --- | --- | --- | --- | --- |\n" > MD
	nr = 0; for (r in ratios) rs[++nr] = r
	for (i = 1; i <= nr; i++) for (j = i + 1; j <= nr; j++) if (rs[j] + 0 < rs[i] + 0) { t = rs[i]; rs[i] = rs[j]; rs[j] = t }
	for (i = 1; i <= nr; i++) {
		r = rs[i]
		for (j = 1; j <= nm; j++) {
			m = order[j]; if (!(m in methods)) continue
			for (q = 1; q <= 2; q++) {
				key = q == 1 ? "inst" : "bag"; k = r SUBSEP m SUBSEP key
				if (!(k in n)) { mean[q] = "NA"; sd[q] = "NA"; cnt = 0; continue }
				mean[q] = s[k] / n[k]; v = n[k] > 1 ? (s2[k] - n[k] * mean[q] ^ 2) / (n[k] - 1) : 0
				sd[q] = sqrt(v > 0 ? v : 0); cnt = n[k]; M[r, m, key] = mean[q]
			}
			print r, m, mean[1], sd[1], mean[2], sd[2], cnt > TSV
			printf "| %s | %s | %s | %s | %d |\n", r, m, fmt(mean[1], sd[1]), fmt(mean[2], sd[2]), cnt > MD
		}
		for (t = 1; t <= 2; t++) {
			base = t == 1 ? "abmil" : "dsmil"
			if (((r, base "-weno", "inst") in M) && ((r, base, "inst") in M))
				printf "| %s | WENO − %s | %+.4f | %+.4f | |\n", r, toupper(base),
					M[r, base "-weno", "inst"] - M[r, base, "inst"], M[r, base "-weno", "bag"] - M[r, base, "bag"] > MD
		}
	}
}
function fmt(a, b) { return a == "NA" ? "NA" : sprintf("%.4f ± %.4f", a, b) }
' TSV="$out.tsv.tmp" MD="$out.md.tmp" "$@"
mv "$out.tsv.tmp" "$out.tsv"
mv "$out.md.tmp" "$out.md"
