# CLI test of pipelines/camelyon16.mk on a tiny synthetic Camelyon16 set with one
# corrupt slide: the others go through (bags, model, scores, AUC, heatmaps), the
# joblog shows the failure, make lists it with its reason and exits non-zero; a
# second run redoes only the failed job; a changed tiling parameter tiles anew.
# Also the slide lister on the flat, capitalised layout.
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=$(dirname "$BIN")
D="$T/data" O="$T/c16out"

run "$BIN/slide-synth" -q --camelyon "$D" --normal 3 --tumor 2 --test-normal 1 --test-tumor 1 --size 1024x768
ok "tiny Camelyon16-shaped set" '[ $status = 0 ] && [ -f "$D/training/normal/normal_002.tif" ]'
head -c 20000 "$D/training/normal/normal_002.tif" >"$T/trunc" && mv "$T/trunc" "$D/training/normal/normal_002.tif"

c16() {
	make --no-print-directory -C "$REPO" -f pipelines/camelyon16.mk CAMELYON16="$D" C16_OUT="$O" BUILD="$BUILDDIR" \
		C16_NEED= C16_TILE="--mpp 2 --size 32 --a_t 0 --threads 1" C16_ENCODER=cifar C16_EPOCHS=1 \
		C16_FIT="--optim adam --lr 1e-3 --batch 64" C16_VAL_FRAC=0.5 C16_HEATMAP="--max-side 256" THREADS=2 \
		C16_FROC_MPP=4 C16_FROC_LEVEL=1 C16_FROC="--bootstrap 100" "$@"
}

run c16 camelyon16
ok "one corrupt slide: make exits non-zero" '[ $status != 0 ]'
ok "the failure is listed with its reason" 'has_err "camelyon16: 1 slides failed" && has_err "normal_002: exit 1: wsi-tile: .*normal_002.tif.*truncated or damaged"'
TILES=$(ls -d "$O"/tiles-* | head -1)
ok "tiles keyed on the parameters" '[ $(ls -d "$O"/tiles-* | wc -l) = 1 ] && grep -q -- "--mpp 2 --size 32" "$TILES/params.txt"'
ok "joblog shows the failed job" 'awk -F"\t" "\$7 == 1 && \$9 ~ / normal_002 /" "$TILES/joblog" | grep -q . && [ $(awk -F"\t" "NR > 1 && \$7 == 0" "$TILES/joblog" | wc -l) = 6 ]'
ok "its stderr is kept" 'grep -q "cannot open" "$TILES/logs/normal_002.err"'
ok "the other six slides are bags" '[ $(ls "$TILES"/*.wbag | wc -l) = 6 ] && [ ! -e "$TILES/normal_002.wbag" ] && "$BIN/bag-info" --check "$TILES"/*.wbag >/dev/null'
ok "bag labels and tumour fractions" '"$BIN/bag-info" "$TILES/tumor_001.wbag" | grep -q "1 (positive)" && "$BIN/bag-info" "$TILES/normal_001.wbag" | grep -q "labelled .*0 with label > 0"'
M=$(ls "$TILES"/manifest-*.tsv)
ok "manifest: official test split, seeded val split" '[ $(grep -c "	test	" "$M") = 2 ] && [ $(grep -c "	val	" "$M") = 2 ] && [ $(grep -c "	train	" "$M") = 2 ]'
RUN=$(ls -d "$TILES"/fit-* | head -1)
ok "model, scores, AUC report" '[ -s "$RUN/model" ] && grep -q "^instance	test	test_001" "$RUN/scores.tsv" && grep -q "^bag  *student_score" "$RUN/auc.txt" && has_out "student_score"'
ok "lesion-level FROC of the student and the teacher" 'grep -q "^FROC score " "$RUN/froc-student.txt" && grep -q "^FROC score " "$RUN/froc-teacher.txt" && has_out "== lesion-level FROC, teacher" && python3 -m json.tool "$RUN/froc-student.json" >/dev/null && [ -f "$RUN/detections-student/test_001.csv" ] && [ -f "$RUN/detections-student/test_002.csv" ] && grep -q "^inf	0	0$" "$RUN/froc-teacher.tsv"'
ok "heatmaps of the test slides" '[ -s "$RUN/heatmaps/test_001.png" ] && [ -s "$RUN/heatmaps/test_002.png" ] && python3 -m json.tool "$RUN/heatmaps/test_001.geojson" >/dev/null'

# again: only the failed job is redone; training is not
mt=$(stat -c %Y "$RUN/model")
nl=$(wc -l <"$TILES/joblog")
sleep 1
run c16 camelyon16
ok "second run: still fails, redoes only the failed job" '[ $status != 0 ] && [ $(wc -l <"$TILES/joblog") = $((nl + 1)) ] && [ "$(tail -1 "$TILES/joblog" | cut -f9 | grep -c " normal_002 ")" = 1 ] && [ $(stat -c %Y "$RUN/model") = $mt ]'

# removing the bad slide: the run succeeds
rm "$D/training/normal/normal_002.tif"
run c16 camelyon16
ok "without the bad slide: exit 0" '[ $status = 0 ] && ! has_err "failed"'

# a changed tiling parameter tiles into a new folder
run c16 camelyon16-tiles C16_TILE="--mpp 4 --size 32 --a_t 0 --threads 1"
ok "changed tiling parameter: new folder" '[ $status = 0 ] && [ $(ls -d "$O"/tiles-* | wc -l) = 2 ]'

# FEATURES: CLAM/TRIDENT .h5 per slide instead of tiling (made here with bag-pack from .npy)
mkdir -p "$T/feats"
cat >"$T/npy.py" <<'PY'
import random, struct, sys
def npy(path, shape, fmt, data):
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }" % ((fmt,) + shape)
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(struct.pack("<%d%s" % (len(data), "f" if fmt == "<f4" else "q"), *data))
out, pos = sys.argv[1], int(sys.argv[2])
random.seed(out)
n = 12
npy(out + ".f.npy", (n, 16), "<f4", [random.random() + (2.0 if pos and i < 16 * 3 else 0) for i in range(16 * n)])
npy(out + ".c.npy", (n, 2), "<i8", [v for i in range(n) for v in (256 * (i % 4), 256 * (i // 4))])
PY
while IFS=$'\t' read -r id label split slide xml; do
	name=$(basename "$slide" .tif)
	python3 "$T/npy.py" "$T/feats/$name" "$label"
	"$BIN/bag-pack" -q --npy "$T/feats/$name.f.npy" --coords "$T/feats/$name.c.npy" --id "$name" --label 0 -o "$T/feats/$name.wbag"
	"$BIN/bag-pack" -q --export h5 "$T/feats/$name.wbag" -o "$T/feats/$name.h5"
done <"$O/slides.tsv"
run c16 camelyon16 FEATURES="$T/feats" C16_ENCODER=mlp C16_PATCH=256
FT=$(grep -l "^features " "$O"/tiles-*/params.txt | xargs dirname)
ok "FEATURES: .h5 imported (no tiling), mlp encoder, heatmaps" '[ $status = 0 ] && [ $(ls "$FT"/*.wbag | wc -l) = 6 ] && "$BIN/bag-info" "$FT/tumor_001.wbag" | grep -q "features 16" && grep -q -- "--encoder mlp" "$FT"/fit-*/params.txt && [ -s "$FT"/fit-*/heatmaps/test_001.geojson ]'

# no such folder
run c16 camelyon16 CAMELYON16="$T/nope"
ok "missing CAMELYON16 folder: clear message" '[ $status != 0 ] && has_err "no such folder" && has_err "hint:"'

# the lister: flat layout, capitalised, reference.csv with a header, test_049 removed
run "$BIN/slide-synth" -q --camelyon "$T/flat" --layout flat --capitalise --normal 1 --tumor 1 --test-normal 1 --test-tumor 1 --size 1024x768
cp "$T/flat/images/Test_001.tif" "$T/flat/images/Test_049.tif"
run bash "$REPO/pipelines/c16-list.sh" "$T/flat"
ok "c16-list: flat layout, lowercase ids, labels from reference.csv" '[ $status = 0 ] && [ $(wc -l <"$T/out") = 4 ] && has_out "^normal_001	0	train	.*Normal_001.tif	$" && has_out "^tumor_001	1	train	.*Tumor_001.tif	.*Tumor_001.xml$" && ! has_out "test_049" && has_err "test_049 removed"'
t1=$(awk -F, '$1 == "Test_001" { print ($2 == "Tumor") }' "$T/flat/reference.csv")
ok "c16-list: test label from reference.csv" 'has_out "^test_001	$t1	test	"'
run bash "$REPO/pipelines/c16-list.sh" "$D"
ok "c16-list: c16 layout, reference.csv without header" '[ $status = 0 ] && has_out "^test_001	" && has_out "^tumor_002	1	train	.*lesion_annotations/tumor_002.xml$" && has_err "2 test slides"'
# tcga-list: a patient's slides (one TCGA barcode prefix) stay on one side of the test split
mkdir -p "$T/tcga"
printf 'slide_id,label\n' >"$T/tcga/labels.csv"
for p in $(seq 10 29); do
	for k in 1 2; do
		id=TCGA-AB-00$p-01Z-00-DX$k
		: >"$T/tcga/$id.svs"
		echo "$id,$([ $((p % 2)) = 0 ] && echo LUSC || echo LUAD)" >>"$T/tcga/labels.csv"
	done
done
run bash "$REPO/pipelines/tcga-list.sh" "$T/tcga" "$T/tcga/labels.csv" LUSC LUAD 0.3 1
split_by_case=$(awk -F'\t' '{ s[$6] = s[$6] " " $3 } END { for (c in s) print c s[c] }' "$T/out" | awk '$2 != $3' | wc -l)
ok "tcga-list: slides of one patient (barcode's first 12 characters) in one split" '[ $status = 0 ] && [ $(wc -l <"$T/out") = 40 ] && has_out "	TCGA-AB-0010$" && [ "$split_by_case" = 0 ] && [ $(awk -F"\t" "\$3 == \"test\"" "$T/out" | wc -l) = 12 ]'
rm -rf "$T"
