# CLI tests of weno-heatmap: a small synthetic slide and a hand-made scores.tsv;
# PNG size, hot pixels where the high scores are, GeoJSON, bad input.
. "$(dirname "$0")/lib.sh"

S="$T/s.tif"
run "$BIN/slide-synth" -o "$S" --size 2048x1536 --tumours 1 --seed 5 -q
ok "slide-synth" '[ $status = 0 ] && [ -s "$S" ]'

# a 256-px grid over the slide: one hot patch at (1024, 768), the rest cold;
# bag "s" plus another bag; the teacher's raw scores are logits in [-3, 5]
{
	echo "# weno-score 0.1.0: hand-made"
	printf 'kind\tsplit\tbag_id\tindex\tx\ty\tlabel\tstudent_score\tteacher_score\n'
	printf 'bag\ttest\tother\tNA\tNA\tNA\t0\t0.1\t0.2\n'
	printf 'instance\ttest\tother\t0\t0\t0\tNA\t0.9\t1\n'
	printf 'bag\ttest\ts\tNA\tNA\tNA\t1\t0.95\t0.8\n'
	i=0
	for y in 256 512 768 1024; do
		for x in 256 512 768 1024 1280; do
			if [ $x = 1024 ] && [ $y = 768 ]; then st=0.95 te=5 lab=0.6; else st=0.05 te=-3 lab=0; fi
			[ $x = 256 ] && [ $y = 1024 ] && lab=NA
			printf 'instance\ttest\ts\t%d\t%d\t%d\t%s\t%s\t%s\n' $i $x $y $lab $st $te
			i=$((i + 1))
		done
	done
} >"$T/scores.tsv"
NPATCH=20

# pixel(png, x, y) -> "r g b"; size(png) -> "w h" (stdlib only: zlib + the PNG filters)
cat >"$T/png.py" <<'PY'
import struct, sys, zlib
def read(p):
    b = open(p, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(b):
        n, t = struct.unpack(">I4s", b[pos:pos + 8]); d = b[pos + 8:pos + 8 + n]; pos += 12 + n
        if t == b"IHDR": w, h, depth, ctype = struct.unpack(">IIBB", d[:10])
        elif t == b"IDAT": idat += d
    assert depth == 8 and ctype == 2
    raw, bpp, stride = zlib.decompress(idat), 3, w * 3
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f = raw[i]; cur = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0; up = prev[x]; c = prev[x - bpp] if x >= bpp else 0
            if f == 1: cur[x] = (cur[x] + a) & 255
            elif f == 2: cur[x] = (cur[x] + up) & 255
            elif f == 3: cur[x] = (cur[x] + (a + up) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(up - c), abs(a - c), abs(a + up - 2 * c)
                cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
        rows.append(cur); prev = cur
    return w, h, rows
w, h, rows = read(sys.argv[1])
if sys.argv[2] == "size": print(w, h)
else:
    x, y = int(sys.argv[2]), int(sys.argv[3]); print(*rows[y][3 * x:3 * x + 3])
PY
px() { python3 "$T/png.py" "$@"; }

# --- the picture ---
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id s --patch 256 --max-side 512 --alpha 1 \
	-o "$T/h.png" --geojson "$T/h.geojson"
ok "writes PNG and GeoJSON" '[ $status = 0 ] && [ -s "$T/h.png" ] && [ -s "$T/h.geojson" ] && has_err "20 patches"'
ok "PNG size: 512 x (384 + 36 legend)" '[ "$(px "$T/h.png" size)" = "512 420" ]'
# thumbnail: 4 level-0 px per px; the hot patch covers [256,320) x [192,256)
read -r r g b < <(px "$T/h.png" 288 224)
ok "hot patch is yellow (viridis 0.95)" '[ $r -gt 180 ] && [ $g -gt 180 ] && [ $b -lt 100 ]'
read -r r g b < <(px "$T/h.png" 96 96)
ok "cold patch is dark purple (viridis 0.05)" '[ $r -lt 100 ] && [ $g -lt 60 ] && [ $b -gt 80 ]'
read -r r g b < <(px "$T/h.png" 4 4)
ok "no patch: the slide shows through (white background)" '[ $r -gt 200 ] && [ $g -gt 200 ] && [ $b -gt 200 ]'
read -r r g b < <(px "$T/h.png" 500 394)
ok "legend: the bar ends yellow" '[ $r -gt 180 ] && [ $g -gt 180 ] && [ $b -lt 100 ]'
read -r r g b < <(px "$T/h.png" 10 394)
ok "legend: the bar starts purple" '[ $r -lt 100 ] && [ $b -gt 60 ]'

run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id s --patch 256 --max-side 512 -q -o "$T/h5.png"
read -r r1 g1 b1 < <(px "$T/h5.png" 288 224)
read -r r2 g2 b2 < <(px "$T/h5.png" 96 96)
ok "alpha 0.5: hot patch yellower than cold" '[ $status = 0 ] && [ $((r1 + g1 - b1)) -gt $((r2 + g2 - b2 + 100)) ]'

run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id s --patch 256 --max-side 4096 --no-legend -q -o "$T/full.png"
ok "max-side above level 0: level 0 size, no legend" '[ $status = 0 ] && [ "$(px "$T/full.png" size)" = "2048 1536" ]'

run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id s --patch 256 --max-side 512 --alpha 1 \
	--score teacher --cmap bluered -q -o "$T/t.png"
read -r r g b < <(px "$T/t.png" 288 224)
read -r r2 g2 b2 < <(px "$T/t.png" 96 96)
ok "teacher logits min-max normalised: 5 is red, -3 is blue" '[ $status = 0 ] && [ $r -gt 200 ] && [ $b -lt 60 ] && [ $b2 -gt 200 ] && [ $r2 -lt 60 ]'

run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id s --patch 256 --max-side 512 --alpha 1 \
	--minmax -q -o "$T/mm.png"
read -r r g b < <(px "$T/mm.png" 288 224)
ok "--minmax on student scores: the highest is viridis 1" '[ $status = 0 ] && [ $r -gt 240 ] && [ $g -gt 220 ] && [ $b -lt 60 ]'

# --- --bag: patch size and id from a bag header ---
run "$BIN/wsi-tile" "$S" --mpp 1 --size 64 --a_t 1 --coords-only --id s -q -o "$T/s.wbag"
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag "$T/s.wbag" --max-side 512 --alpha 1 -q \
	-o "$T/hb.png" --geojson "$T/hb.geojson"
ok "--bag gives patch_level0 and the id" '[ $status = 0 ] && cmp -s "$T/h.png" "$T/hb.png" && cmp -s "$T/h.geojson" "$T/hb.geojson"'

# --- GeoJSON ---
run python3 -m json.tool "$T/h.geojson"
ok "GeoJSON is valid JSON" '[ $status = 0 ]'
cat >"$T/check.py" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
assert g["type"] == "FeatureCollection"
f = g["features"]
print(len(f))
hot = [x for x in f if x["properties"]["index"] == 13][0]
assert hot["geometry"]["type"] == "Polygon"
assert hot["geometry"]["coordinates"][0] == [[1024, 768], [1280, 768], [1280, 1024], [1024, 1024], [1024, 768]], hot["geometry"]
p = hot["properties"]
assert p["objectType"] == "detection" and p["classification"]["name"] == "Positive"
assert abs(p["score"] - 0.95) < 1e-6 and abs(p["measurements"]["score"] - 0.95) < 1e-6 and abs(p["label"] - 0.6) < 1e-6
na = [x for x in f if x["properties"]["label"] is None]
assert len(na) == 1 and "label" not in na[0]["properties"]["measurements"]
assert sum(x["properties"]["classification"]["name"] == "Negative" for x in f) == 19
print("ok")
PY
run python3 "$T/check.py" "$T/h.geojson"
ok "GeoJSON: 20 features, level-0 squares, QuPath properties" '[ $status = 0 ] && [ "$(head -1 "$T/out")" = $NPATCH ] && has_out "^ok"'
run "$BIN/weno-heatmap" --scores "$T/scores.tsv" --bag-id s --patch 256 --geojson "$T/only.geojson"
ok "GeoJSON alone needs no slide" '[ $status = 0 ] && cmp -s "$T/h.geojson" "$T/only.geojson"'
# no silent caps: --bag-id was cut to 255 bytes, and drew the bag whose id is its first 255
id255=$(printf 'b%.0s' $(seq 255)); id300=${id255}$(printf 'c%.0s' $(seq 45))
{ head -2 "$T/scores.tsv"
  printf 'instance\ttest\t%s\t0\t0\t0\t0\t0.1\t0\n' "$id255"
  printf 'instance\ttest\t%s\t%d\t%d\t0\t0\t0.2\t0\n' "$id300" 0 0 "$id300" 1 256 "$id300" 2 512
} >"$T/long_ids.tsv"
run "$BIN/weno-heatmap" --scores "$T/long_ids.tsv" --bag-id "$id300" --patch 256 --geojson "$T/long.geojson"
ok "a 300-byte --bag-id draws its own bag, not the one named by its first 255 bytes" '[ $status = 0 ] && has_err "long.geojson: 3 features"'

# --- detection marks (froc-report --detections-out writes such CSV files) ---
printf '0.95,1100,800\n0.4,200,1400\n' >"$T/det.csv"
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id s --patch 256 --max-side 512 --alpha 1 -q \
	--detections "$T/det.csv" -o "$T/hd.png" --geojson "$T/hd.geojson"
read -r r g b < <(px "$T/hd.png" 275 200)
read -r r2 g2 b2 < <(px "$T/hd.png" 275 197)
read -r r3 g3 b3 < <(px "$T/hd.png" 277 201)
ok "--detections: a red cross at the point, white around it" '[ $status = 0 ] && [ $r -gt 200 ] && [ $g -lt 60 ] && [ $b -lt 60 ] && [ $r2 -gt 200 ] && [ $g2 -lt 60 ] && [ "$r3 $g3 $b3" = "255 255 255" ]'
read -r r g b < <(px "$T/hd.png" 96 96)
read -r r2 g2 b2 < <(px "$T/h.png" 96 96)
ok "--detections: the rest unchanged" '[ "$r $g $b" = "$r2 $g2 $b2" ]'
run python3 -c "
import json, sys
f = json.load(open(sys.argv[1]))['features']
pts = [x for x in f if x['geometry']['type'] == 'Point']
assert len(f) == 22 and len(pts) == 2, len(f)
assert pts[0]['geometry']['coordinates'] == [1100, 800] and pts[0]['properties']['confidence'] == 0.95
assert pts[1]['properties']['classification']['name'] == 'Detection'
print('ok')" "$T/hd.geojson"
ok "--detections: points in the GeoJSON" '[ $status = 0 ] && has_out "^ok"'
printf '0.95,1100\n' >"$T/baddet.csv"
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id s --patch 256 --detections "$T/baddet.csv" -o "$T/x.png"
ok "--detections: a bad line, exit 1, no output" '[ $status = 1 ] && has_err "baddet.csv: line 1" && no_file "$T/x.png"'

# --- bad input: exit 1, a clear message, no output left ---
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id nope --patch 256 -o "$T/x.png" --geojson "$T/x.geojson"
ok "unknown bag id: exit 1, names it and the bags there" '[ $status = 1 ] && has_err "no instance rows for bag .nope." && has_err "other, s" && no_file "$T/x.png" && no_file "$T/x.geojson"'
run "$BIN/weno-heatmap" --slide "$T/missing.tif" --scores "$T/scores.tsv" --bag-id s --patch 256 -o "$T/x.png" --geojson "$T/x.geojson"
ok "missing slide: exit 1, no output" '[ $status = 1 ] && has_err "missing.tif" && no_file "$T/x.png" && no_file "$T/x.geojson"'
printf 'bag_id\tlabel\tscore\ns\t1\t0.5\n' >"$T/cols.tsv"
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/cols.tsv" --bag-id s --patch 256 -o "$T/x.png" --geojson "$T/x.geojson"
ok "scores without the columns: exit 1, names the column" '[ $status = 1 ] && has_err "cols.tsv: line 1: no column .x." && no_file "$T/x.png" && no_file "$T/x.geojson"'
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --bag-id s --patch 256 --score nope -o "$T/x.png"
ok "unknown score: exit 2" '[ $status = 2 ] && no_file "$T/x.png"'
sed 's/\t-3$/\tNA/; s/\t5$/\tNA/' "$T/scores.tsv" >"$T/na.tsv"
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/na.tsv" --bag-id s --patch 256 --score teacher -o "$T/x.png"
ok "no teacher scores: exit 1" '[ $status = 1 ] && has_err "every teacher_score is NA" && no_file "$T/x.png"'
sed '6s/\t256\t256\t/\t2x\t256\t/' "$T/scores.tsv" >"$T/badx.tsv"
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/badx.tsv" --bag-id s --patch 256 -o "$T/x.png"
ok "bad number: exit 1, names the line" '[ $status = 1 ] && has_err "badx.tsv: line 6, columns x, y: .2x." && no_file "$T/x.png"'
head -c 20000 "$S" >"$T/trunc.tif"
run "$BIN/weno-heatmap" --slide "$T/trunc.tif" --scores "$T/scores.tsv" --bag-id s --patch 256 -o "$T/x.png"
ok "truncated slide: exit 1 or grey blocks, never a crash" '{ [ $status = 1 ] && no_file "$T/x.png"; } || { [ $status = 0 ] && has_err "unreadable"; }'
run "$BIN/weno-heatmap" --slide "$S" --scores "$T/scores.tsv" --patch 256 -o "$T/x.png"
ok "no --bag-id or --bag: exit 2" '[ $status = 2 ] && has_err "bag-id"'
run "$BIN/weno-heatmap" --scores "$T/scores.tsv" --bag-id s --patch 256 -o "$T/x.png"
ok "-o without --slide: exit 2" '[ $status = 2 ] && has_err "slide"'
run "$BIN/weno-heatmap" --help
ok "--help on stdout, exit 0" '[ $status = 0 ] && has_out "usage: weno-heatmap"'
rm -rf "$T"
