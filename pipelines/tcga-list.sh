#!/usr/bin/env bash
# pipelines/tcga-list.sh DIR LABELS.csv POSITIVE NEGATIVE TEST_FRAC SEED > slides.tsv
# Lists the TCGA slides under DIR (.svs, .tif, .ndpi, .mrxs, any depth) that LABELS.csv names, as
# TSV: id label split slide xml ("-": no annotation) case.  LABELS.csv: a header, then
# slide_id,label[,case_id][,split] (the columns found by name); slide_id is the file name without
# its extension (or with it); label is POSITIVE (1) or NEGATIVE (0), e.g. LUSC and LUAD.  Without a
# split column, a seeded fraction TEST_FRAC of the cases of each label goes to test (every slide of
# a case on one side), the rest to train.  Without a case_id column a TCGA barcode's first 12
# characters (TCGA-TSS-PPPP, the patient) are the case, else the slide alone.  Counts and missing
# slides go to stderr.
set -euo pipefail
dir=${1:?usage: tcga-list.sh DIR LABELS.csv POSITIVE NEGATIVE TEST_FRAC SEED}
csv=$2 pos=$3 neg=$4 frac=$5 seed=$6
[ -d "$dir" ] || { echo "tcga-list: $dir: no such folder" >&2; exit 1; }
[ -f "$csv" ] || { echo "tcga-list: $csv: no labels CSV (slide_id,label[,case_id][,split])" >&2; exit 1; }
{
	find -L "$dir" -type f \( -iname '*.svs' -o -iname '*.tif' -o -iname '*.tiff' -o -iname '*.ndpi' -o -iname '*.mrxs' \) |
		sed 's/^/F\t/'
	sed 's/\r$//' "$csv" | sed 's/^/L\t/'
} | awk -F'\t' -v OFS='\t' -v pos="$pos" -v neg="$neg" -v frac="$frac" -v seed="$seed" -v csv="$csv" '
$1 == "F" { b = $2; sub(/.*\//, "", b); full[b] = $2; sub(/\.[^.]*$/, "", b); file[b] = $2; next }
$1 == "L" {
	line = substr($0, 3); n = split(line, c, ",")
	if (!hdr) { hdr = 1; for (i = 1; i <= n; i++) col[c[i]] = i
		if (!("slide_id" in col) || !("label" in col)) { print "tcga-list: " csv ": the header needs slide_id and label columns" > "/dev/stderr"; bad = 1; exit 1 }
		next }
	id = c[col["slide_id"]]; l = c[col["label"]]
	if (id in full) { f = full[id]; sub(/\.[^.]*$/, "", id) } else f = file[id]
	if (f == "") { printf "tcga-list: %s: no slide file under the folder, skipped\n", id > "/dev/stderr"; missing++; next }
	if (l == pos) y = 1; else if (l == neg) y = 0
	else { printf "tcga-list: %s: label %s is neither %s nor %s\n", id, l, pos, neg > "/dev/stderr"; bad = 1; next }
	case_ = ("case_id" in col) ? c[col["case_id"]] : (id ~ /^TCGA-[^-]+-[^-]+/ ? substr(id, 1, 12) : id)
	sp = ("split" in col) ? c[col["split"]] : ""
	k++; ids[k] = id; Y[k] = y; F[k] = f; C[k] = case_; S[k] = sp
	if (!((y, case_) in seen)) { seen[y, case_] = 1; nc[y]++; cases[y, nc[y]] = case_ }
}
END {
	if (bad) exit 1
	srand(seed)
	for (y = 0; y <= 1; y++) {   # a seeded shuffle of the cases of each label; the first TEST_FRAC go to test
		for (i = nc[y]; i > 1; i--) { j = int(rand() * i) + 1; t = cases[y, i]; cases[y, i] = cases[y, j]; cases[y, j] = t }
		m = int(nc[y] * frac + 0.5)
		for (i = 1; i <= nc[y]; i++) test[cases[y, i]] = i <= m
	}
	for (i = 1; i <= k; i++) {
		sp = S[i] != "" ? S[i] : (test[C[i]] ? "test" : "train")
		print ids[i], Y[i], sp, F[i], "-", C[i]; cnt[sp, Y[i]]++
	}
	printf "tcga-list: %d slides: train %d+%d, test %d+%d (positive+negative)%s\n", k, cnt["train", 1], cnt["train", 0],
		cnt["test", 1], cnt["test", 0], missing ? sprintf("; %d listed slides not found", missing) : "" > "/dev/stderr"
}' | sort -t "$(printf '\t')" -k1,1
