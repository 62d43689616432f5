# CLI tests of slide-synth and wsi-tile: generate a small slide, tile it,
# check and pack the stream; resolution cases; bad input and exit codes.
. "$(dirname "$0")/lib.sh"

S="$T/s.tif"
run "$BIN/slide-synth" -o "$S" --xml "$T/s.xml" --tissue-mask "$T/tissue.png" --tumour-mask "$T/tumour.png" \
	--mask-downsample 32 --size 4096x3072 --tumours 2 --seed 3
ok "slide-synth writes slide, xml and masks" '[ $status = 0 ] && [ -s "$S" ] && [ -s "$T/s.xml" ] && [ -s "$T/tissue.png" ] && [ -s "$T/tumour.png" ] && has_err "2 tumours"'
ok "slide-synth xml has tumour and exclusion groups" 'grep -q "PartOfGroup=\"_0\"" "$T/s.xml" && grep -q "PartOfGroup=\"Tumor\"" "$T/s.xml" && grep -q "PartOfGroup=\"_2\"" "$T/s.xml"'
run "$BIN/slide-synth" -o "$T/s2.tif" --size 4096x3072 --tumours 2 --seed 3 -q
ok "same seed, same slide" 'cmp -s "$S" "$T/s2.tif"'
if command -v openslide-show-properties >/dev/null; then
	run openslide-show-properties "$S"
	ok "openslide opens it as generic-tiff" '[ $status = 0 ] && has_out "openslide.vendor: .generic-tiff." && has_out "level-count: .6."'
fi

# --- tiling ---
run "$BIN/wsi-tile" "$S" --mpp 0.5 --size 128 -a "$T/s.xml" --a_t 1 -o "$T/s.wbag" --thumbnail "$T/th.png" \
	--contours "$T/c.geojson" --summary "$T/sum.json"
ok "wsi-tile tiles a slide" '[ $status = 0 ] && [ -s "$T/s.wbag" ] && [ -s "$T/th.png" ] && [ -s "$T/c.geojson" ]'
ok "summary json" 'grep -q "\"mpp_source\":\"tiff-resolution-cm\"" "$T/sum.json" && grep -q "\"level\":1" "$T/sum.json" && grep -q "\"bad_tiles\":0" "$T/sum.json"'
run "$BIN/bag-info" --check "$T/s.wbag"
ok "bag-info --check accepts the stream" '[ $status = 0 ] && has_out "ok"'
run "$BIN/bag-info" "$T/s.wbag"
ok "provenance: level, mpp source, patch size" 'has_out "pixels 128x128x3" && has_out "mpp_source=tiff-resolution-cm" && has_out "patch_level0=256" && has_out "tool=wsi-tile" && has_out "param.size=128"'
run "$BIN/bag-info" --instances "$T/s.wbag"
ok "tumour fractions recorded" '[ $(awk "NR>1 && \$5 >= 0.25" "$T/out" | wc -l) -gt 0 ] && [ $(awk "NR>1 && \$5 < 0" "$T/out" | wc -l) = 0 ] && [ $(awk "NR>1 && \$4 <= 0" "$T/out" | wc -l) = 0 ]'
n=$(tail -n +2 "$T/out" | wc -l)
run "$BIN/wsi-tile" "$S" --mpp 0.5 --size 128 -a "$T/s.xml" --a_t 1 --threads 1 -o "$T/s1.wbag"
ok "output does not depend on threads" '[ $status = 0 ] && cmp -s "$T/s.wbag" "$T/s1.wbag"'
run "$BIN/wsi-tile" "$S" --mpp 0.5 --size 128 -a "$T/s.xml" --a_t 1 --no-fast -o "$T/s2.wbag"
ok "fast path and OpenSlide give the same stream" '[ $status = 0 ] && cmp -s "$T/s.wbag" "$T/s2.wbag"'
run "$BIN/wsi-tile" "$S" --mpp 0.25 --size 256 --a_t 1 --summary "$T/fast.json" -o "$T/l0.wbag"
ok "tile-aligned patches use the fast path" '[ $status = 0 ] && grep -q "\"openslide_reads\":0" "$T/fast.json"'
run "$BIN/wsi-tile" "$S" --mpp 0.25 --size 256 --a_t 1 --no-fast -o "$T/l0b.wbag"
ok "level 0, 256 px: fast path identical to OpenSlide" '[ $status = 0 ] && cmp -s "$T/l0.wbag" "$T/l0b.wbag"'
run "$BIN/wsi-tile" "$S" --mpp 0.5 --size 128 --a_t 1 --coords-only -o "$T/c.wbag"
ok "coords-only" '[ $status = 0 ] && "$BIN/bag-info" "$T/c.wbag" | grep -q "coordinates"'
run "$BIN/wsi-tile" "$S" --mpp 0.5 --size 128 --a_t 1 --max-tiles 10 --seed 4 --coords-only -o "$T/m.wbag"
ok "max-tiles keeps K" '[ $status = 0 ] && [ $("$BIN/bag-info" --instances "$T/m.wbag" | tail -n +2 | wc -l) = 10 ]'
run "$BIN/wsi-tile" "$S" --mag 20 --size 128 --a_t 1 --coords-only -o "$T/g.wbag"
ok "--mag 20 on a 0.25 µm/px slide is level 1" '[ $status = 0 ] && "$BIN/bag-info" "$T/g.wbag" | grep -q "level 1, downsample 2"'
run "$BIN/wsi-tile" "$S" --mpp 0.75 --size 64 --a_t 1 -o "$T/r.wbag"
ok "residual downsample 1.5 from level 1" '[ $status = 0 ] && "$BIN/bag-info" "$T/r.wbag" | grep -q "residual_scale=1.5"'

# --- a pipe into bag-pack ---
"$BIN/wsi-tile" "$S" --mpp 0.5 --size 128 --a_t 1 -a "$T/s.xml" 2>"$T/err" | "$BIN/bag-pack" --id s --label 1 -o "$T/packed.wbag" 2>>"$T/err"
status=$?
ok "wsi-tile | bag-pack" '[ $status = 0 ] && "$BIN/bag-info" --check "$T/packed.wbag" >/dev/null && "$BIN/bag-info" "$T/packed.wbag" | grep -q "1 (positive)"'
ok "summary TSV line on stderr" 'grep -q "^wsi-tile	.*s.tif	[0-9]*	[0-9.]*	0.5	tiff-resolution-cm	" "$T/err"'

# --- resolution sources ---
run "$BIN/slide-synth" -o "$T/nores.tif" --size 1024x768 --res-unit none -q
run "$BIN/wsi-tile" "$T/nores.tif" --mpp 1 --size 64 --a_t 0 -o "$T/x.wbag"
ok "no µm/px: exit 1 with a hint" '[ $status = 1 ] && has_err "no µm/px" && has_err "slide-mpp" && no_file "$T/x.wbag"'
run "$BIN/wsi-tile" "$T/nores.tif" --mpp 1 --size 64 --a_t 0 --slide-mpp 0.25 -o "$T/x.wbag"
ok "--slide-mpp fills in" '[ $status = 0 ] && "$BIN/bag-info" "$T/x.wbag" | grep -q "mpp_source=user"'
run "$BIN/slide-synth" -o "$T/inch.tif" --size 1024x768 --res-unit inch --mpp 0.5 -q
run "$BIN/wsi-tile" "$T/inch.tif" --mpp 1 --size 64 --a_t 0 --coords-only -o "$T/i.wbag"
ok "inch resolution tags" '[ $status = 0 ] && "$BIN/bag-info" "$T/i.wbag" | grep -q "mpp_source=tiff-resolution-inch"'
run "$BIN/slide-synth" -o "$T/ap.tif" --size 1024x768 --aperio -q
run "$BIN/wsi-tile" "$T/ap.tif" --mag 10 --size 64 --a_t 0 --coords-only -o "$T/a.wbag"
ok "openslide.mpp-x and objective power" '[ $status = 0 ] && "$BIN/bag-info" "$T/a.wbag" | grep -q "mpp_source=openslide.mpp-x" && "$BIN/bag-info" "$T/a.wbag" | grep -q "mag_source=openslide.objective-power"'

# --- bad input ---
head -c 20000 "$S" >"$T/trunc.tif"
run "$BIN/wsi-tile" "$T/trunc.tif" --mpp 1 --size 64 -o "$T/t.wbag"
ok "truncated slide: exit 1, names it" '[ $status = 1 ] && has_err "trunc.tif" && no_file "$T/t.wbag"'
printf 'not a slide' >"$T/junk.tif"
run "$BIN/wsi-tile" "$T/junk.tif" --mpp 1 --size 64 -o "$T/j.wbag"
ok "not a slide: exit 1" '[ $status = 1 ] && has_err "junk.tif"'
run "$BIN/wsi-tile" "$T/missing.tif" --mpp 1 --size 64 -o "$T/j.wbag"
ok "missing slide: exit 1" '[ $status = 1 ] && has_err "cannot open .*missing.tif"'
# a corrupt tile in the middle of level 0: the patch is skipped, counted, reported
cp "$S" "$T/bad.tif"
python3 - "$T/bad.tif" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
# first IFD: find TileOffsets (324) and TileByteCounts (325)
off = struct.unpack_from("<I", b, 4)[0]
n = struct.unpack_from("<H", b, off)[0]
tags = {}
for i in range(n):
    t, ty, cnt, val = struct.unpack_from("<HHII", b, off + 2 + 12 * i)
    tags[t] = (cnt, val)
cnt, offs = tags[324]
_, cnts = tags[325]
k = (3072 // 256 // 2) * (4096 // 256) + 4096 // 256 // 2   # a tile in the middle
o = struct.unpack_from("<I", b, offs + 4 * k)[0]
c = struct.unpack_from("<I", b, cnts + 4 * k)[0]
for i in range(o + 10, o + c - 2):
    b[i] = (i * 37) & 0xFF
open(p, "wb").write(bytes(b))
PY
run "$BIN/wsi-tile" "$T/bad.tif" --mpp 0.25 --size 256 --a_t 1 --summary "$T/bad.json" -o "$T/bad.wbag"
ok "corrupt tile: patch skipped, counted, run succeeds" '[ $status = 0 ] && has_err "warning: .*bad.tif: patch (2048, 1536) skipped" && grep -q "\"skipped\":1" "$T/bad.json" && "$BIN/bag-info" --check "$T/bad.wbag" >/dev/null'
# every level-0 tile corrupt: nothing can be written, and that is a failure
cp "$S" "$T/dead.tif"
python3 - "$T/dead.tif" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
off = struct.unpack_from("<I", b, 4)[0]
n = struct.unpack_from("<H", b, off)[0]
tags = {}
for i in range(n):
    t, ty, cnt, val = struct.unpack_from("<HHII", b, off + 2 + 12 * i)
    tags[t] = (cnt, val)
cnt, offs = tags[324]
_, cnts = tags[325]
for k in range(cnt):
    o = struct.unpack_from("<I", b, offs + 4 * k)[0]
    c = struct.unpack_from("<I", b, cnts + 4 * k)[0]
    for i in range(o + 10, o + c - 2):
        b[i] = (i * 37) & 0xFF
open(p, "wb").write(bytes(b))
PY
run "$BIN/wsi-tile" "$T/dead.tif" --mpp 0.25 --size 256 --a_t 1 --max-tiles 20 -o "$T/dead.wbag"
ok "every patch lost to corrupt tiles: exit 1, the count named, nothing written" '[ $status = 1 ] && has_err "every one of the 20 patches to write was lost" && no_file "$T/dead.wbag"'
run "$BIN/wsi-tile" "$S" --size 64 -o "$T/u.wbag"
ok "no --mpp or --mag: exit 2" '[ $status = 2 ] && has_err "exactly one of --mpp"'
run "$BIN/wsi-tile" "$S" --mpp 1 --size 64 --preset nope -o "$T/u.wbag"
ok "unknown preset: exit 2" '[ $status = 2 ]'
run "$BIN/wsi-tile" "$S" --mpp 0.01 --size 64 -o "$T/u.wbag"
ok "finer than level 0: exit 2" '[ $status = 2 ] && has_err "finer than level 0"'
run "$BIN/wsi-tile" "$S" --mpp 1 --size 64 -a "$T/nope.xml" -o "$T/u.wbag"
ok "missing annotation: exit 1" '[ $status = 1 ] && has_err "nope.xml"'
# no silent caps: --id was cut to the 255 bytes a bag id holds
run "$BIN/wsi-tile" "$S" --mpp 1 --size 64 --coords-only --id "$(printf 'i%.0s' $(seq 300))" -o "$T/u.wbag"
ok "a 300-byte --id: exit 2 naming the limit" '[ $status = 2 ] && has_err "at most 255" && no_file "$T/u.wbag"'
run "$BIN/wsi-tile" --help
ok "--help on stdout, exit 0" '[ $status = 0 ] && has_out "usage: wsi-tile"'

# --- Camelyon16-shaped folders ---
run "$BIN/slide-synth" --camelyon "$T/c16" --normal 2 --tumor 1 --test-normal 1 --test-tumor 1 --size 1024x768 -q
ok "camelyon layout" '[ $status = 0 ] && [ -f "$T/c16/training/normal/normal_002.tif" ] && [ -f "$T/c16/training/tumor/tumor_001.tif" ] && [ -f "$T/c16/training/lesion_annotations/tumor_001.xml" ] && [ $(ls "$T/c16/testing/images" | wc -l) = 2 ] && [ $(ls "$T/c16/testing/lesion_annotations" | wc -l) = 1 ] && grep -q "^Test_00[12],Tumor," "$T/c16/testing/reference.csv" && grep -q "^Test_00[12],Normal$" "$T/c16/testing/reference.csv"'
run "$BIN/slide-synth" --camelyon "$T/flat" --layout flat --capitalise --normal 1 --tumor 1 --test-normal 1 --test-tumor 0 --size 1024x768 -q
ok "flat layout, capitalised" '[ $status = 0 ] && [ -f "$T/flat/images/Normal_001.tif" ] && [ -f "$T/flat/images/Tumor_001.tif" ] && [ -f "$T/flat/annotations/Tumor_001.xml" ] && [ -f "$T/flat/images/Test_001.tif" ] && head -1 "$T/flat/reference.csv" | grep -q "^image,type"'
run "$BIN/slide-synth" -o "$T/u.tif" --size 10x10
ok "slide-synth bad size: exit 2" '[ $status = 2 ]'
rm -rf "$T"
