#!/usr/bin/env bash
# pipelines/c16-list.sh DIR > slides.tsv
# Lists the slides of a Camelyon16 download as TSV: id label split slide xml
# (no header; id lowercase, label 0/1, split train/test, xml empty when the
# slide has no lesion annotation).  Accepts both published layouts:
#   DIR/training/{normal,tumor}/*.tif, DIR/training/lesion_annotations/*.xml,
#   DIR/testing/images/*.tif, DIR/testing/lesion_annotations/*.xml,
#   DIR/testing/reference.csv (no header: Test_001,Tumor,...)
# and the flat one: DIR/images/*.tif, DIR/annotations/*.xml, DIR/reference.csv
# (with a header), in either capitalisation (Normal_001.tif, normal_001.tif,
# Test_001.tif).  Training labels come from the name (normal_ 0, tumor_ 1),
# test labels from reference.csv.  test_049 (a duplicate slide) is removed.
# Counts go to stderr; a test slide missing from reference.csv is an error.
set -euo pipefail
dir=${1:?usage: c16-list.sh CAMELYON16_DIR}
[ -d "$dir" ] || { echo "c16-list: $dir: no such folder" >&2; exit 1; }
shopt -s nullglob nocaseglob

slides=() xmls=() ref=
for d in "$dir/training/normal" "$dir/training/tumor" "$dir/testing/images" "$dir/images"; do
	[ -d "$d" ] && for f in "$d"/*.tif "$d"/*.tiff; do slides+=("$f"); done
done
for d in "$dir/training/lesion_annotations" "$dir/testing/lesion_annotations" "$dir/annotations" \
	"$dir/lesion_annotations"; do
	[ -d "$d" ] && for f in "$d"/*.xml; do xmls+=("$f"); done
done
for r in "$dir/testing/reference.csv" "$dir/reference.csv"; do
	[ -f "$r" ] && { ref=$r; break; }
done
if [ ${#slides[@]} = 0 ]; then
	echo "c16-list: $dir: no slides (expected training/normal, training/tumor, testing/images or images/ with .tif files)" >&2
	exit 1
fi

{
	printf 'X\t%s\n' "${xmls[@]+"${xmls[@]}"}"
	[ -n "$ref" ] && sed 's/\r$//' "$ref" | awk -F, '{ print "R\t" $1 "\t" $2 }'
	printf 'S\t%s\n' "${slides[@]}"
} | awk -F'\t' -v OFS='\t' -v ref="$ref" '
function base(p,   b) { b = p; sub(/.*\//, "", b); sub(/\.[^.]*$/, "", b); return tolower(b) }
$1 == "X" && $2 != "" { xml[base($2)] = $2; next }
$1 == "R" {
	id = tolower($2); gsub(/^[ "]+|[ "]+$/, "", id); sub(/\.tiff?$/, "", id)
	t = tolower($3); gsub(/^[ "]+|[ "]+$/, "", t)
	if (t == "tumor" || t == "tumour") lab[id] = 1
	else if (t == "normal") lab[id] = 0
	next   # a header line or anything else
}
$1 == "S" {
	id = base($2)
	if (id == "test_049") { removed++; next }
	if (id in seen) { printf "c16-list: %s: listed twice (%s and %s)\n", id, seen[id], $2 > "/dev/stderr"; bad = 1; next }
	seen[id] = $2
	if (id ~ /^normal_[0-9]+$/) { l = 0; s = "train" }
	else if (id ~ /^tumor_[0-9]+$/) { l = 1; s = "train" }
	else if (id ~ /^test_[0-9]+$/) {
		s = "test"
		if (!(id in lab)) {
			printf "c16-list: %s: not in %s\n", id, ref == "" ? "reference.csv (no reference.csv found)" : ref > "/dev/stderr"
			bad = 1; next
		}
		l = lab[id]
	} else { printf "c16-list: warning: %s: not a Camelyon16 name (normal_, tumor_, test_), skipped\n", $2 > "/dev/stderr"; next }
	print id, l, s, $2, (id in xml) ? xml[id] : ""
	n[s, l]++
}
END {
	printf "c16-list: %d training slides (%d normal, %d tumour), %d test slides (%d normal, %d tumour)%s\n",
		n["train", 0] + n["train", 1], n["train", 0], n["train", 1], n["test", 0] + n["test", 1], n["test", 0],
		n["test", 1], removed ? "; test_049 removed" : "" > "/dev/stderr"
	exit bad
}' | sort -t "$(printf '\t')" -k1,1
