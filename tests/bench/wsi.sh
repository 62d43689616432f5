#!/usr/bin/env bash
# tests/bench/wsi.sh - slide reading: wsi-tile against an openslide-python
# loop of read_region calls, on a generated 24,576 x 16,384 slide (JPEG tiles
# of 256).  Prints patches/s of each and the ratio (target >= 4x), the tissue
# detection time and the peak RSS of each program (/usr/bin/time -v).
# Needs python3-openslide (Debian) for the baseline; skips it when missing.
set -u
BIN=${BIN:-$(pwd)/build/bin}
W=${WSI_BENCH_W:-24576}
H=${WSI_BENCH_H:-16384}
D=$(mktemp -d "${TMPDIR:-/tmp}/wsibench.XXXXXX")
trap 'rm -rf "$D"' EXIT
PY=/usr/bin/python3
TIME=/usr/bin/time

rss() { awk -F': ' '/Maximum resident set size/ {printf "%.0f MB", $2 / 1024}' "$1"; }
secs() { awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$1"; }

echo "slide: ${W}x${H}, JPEG tiles of 256, quality 80"
$TIME -v "$BIN/slide-synth" -o "$D/big.tif" --size "${W}x${H}" --tumours 3 --seed 1 \
	--tissue-mask "$D/tissue64.png" --mask-downsample 64 -q 2>"$D/synth.time" || { cat "$D/synth.time"; exit 1; }
echo "slide-synth: $(secs "$D/synth.time") s, peak RSS $(rss "$D/synth.time"), $(du -m "$D/big.tif" | cut -f1) MB"
np=$(( (W / 256) * (H / 256) ))

# every 256-px level-0 patch, no tissue filter, pixels decoded and written
for t in 1 0; do
	$TIME -v "$BIN/wsi-tile" "$D/big.tif" --mpp 0.25 --size 256 --no-tissue --threads $t --zstd-level -5 \
		--summary "$D/sum$t.json" -o /dev/null 2>"$D/tile$t.time" || { cat "$D/tile$t.time"; exit 1; }
done
s1=$(secs "$D/tile1.time"); s0=$(secs "$D/tile0.time")
r1=$(awk -v n=$np -v s="$s1" 'BEGIN {printf "%.0f", n / s}')
r0=$(awk -v n=$np -v s="$s0" 'BEGIN {printf "%.0f", n / s}')
echo "wsi-tile, 1 thread:   $np patches in $s1 s = $r1 patches/s, peak RSS $(rss "$D/tile1.time") (fast path tiles: $(grep -o '"fast_tiles":[0-9]*' "$D/sum1.json" | cut -d: -f2))"
echo "wsi-tile, $(nproc) threads:  $np patches in $s0 s = $r0 patches/s, peak RSS $(rss "$D/tile0.time")"
$TIME -v "$BIN/wsi-tile" "$D/big.tif" --mpp 0.25 --size 256 --no-tissue --threads 1 --no-fast --zstd-level -5 \
	-o /dev/null 2>"$D/slow.time"
sn=$(secs "$D/slow.time")
echo "wsi-tile --no-fast, 1 thread (OpenSlide read_region): $(awk -v n=$np -v s="$sn" 'BEGIN {printf "%.0f", n / s}') patches/s"

BENCH=${BUILD:-build}/bench/bench_slide
[ -x "$BENCH" ] && "$BENCH" "$D/big.tif"

if $PY -c 'import openslide' 2>/dev/null; then
	cat >"$D/loop.py" <<'PY'
import sys, time, openslide
s = openslide.OpenSlide(sys.argv[1])
w, h = s.dimensions
t = time.time(); n = 0
for y in range(0, h - 255, 256):
    for x in range(0, w - 255, 256):
        s.read_region((x, y), 0, (256, 256)).convert("RGB")
        n += 1
print(n, time.time() - t)
PY
	$TIME -v $PY "$D/loop.py" "$D/big.tif" >"$D/py.out" 2>"$D/py.time"
	read -r pn ps <"$D/py.out"
	pr=$(awk -v n="$pn" -v s="$ps" 'BEGIN {printf "%.0f", n / s}')
	echo "openslide-python read_region loop: $pn patches in $(printf %.2f "$ps") s = $pr patches/s, peak RSS $(rss "$D/py.time")"
	echo "ratio wsi-tile (1 thread, zstd stream included) / openslide-python: $(awk -v a="$r1" -v b="$pr" 'BEGIN {printf "%.1fx", a / b}') (target >= 4x)"
else
	echo "SKIP openslide-python baseline: python3-openslide is not installed (apt-get install python3-openslide)"
fi

# tissue detection (level 6, 64x) and the tile stream with tissue
$TIME -v "$BIN/wsi-tile" "$D/big.tif" --mpp 0.5 --size 224 --coords-only --a_t 1 --summary "$D/seg.json" \
	-o /dev/null 2>"$D/seg.time"
echo "tissue detection: $(grep -o '"tissue_seconds":[0-9.]*' "$D/seg.json" | cut -d: -f2) s (level $(grep -o '"seg_level":[0-9]*' "$D/seg.json" | cut -d: -f2)), tissue $(grep -o '"tissue_mm2":[0-9.]*' "$D/seg.json" | cut -d: -f2) mm2"

# GNU Parallel over several slides, one single-threaded wsi-tile per job: -j1 against -j$(nproc)
if command -v parallel >/dev/null; then
	NS=${WSI_BENCH_SLIDES:-4}
	for i in $(seq 1 "$NS"); do
		"$BIN/slide-synth" -q -o "$D/s$i.tif" --size 8192x8192 --tumours 2 --seed "$i"
	done
	for j in 1 "$(nproc)"; do
		t0=$(date +%s.%N)
		parallel -j "$j" --joblog "$D/joblog$j" "$BIN/wsi-tile" {} --mpp 0.25 --size 256 --no-tissue --threads 1 \
			--zstd-level -5 -o "$D/{/.}.wbag" ::: "$D"/s*.tif 2>/dev/null
		t1=$(date +%s.%N)
		eval "par$j=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
	done
	pj=$(nproc)
	eval "pn=\$par$pj"
	echo "GNU Parallel, $NS slides of 8192x8192 (1024 patches each): -j1 $par1 s, -j$pj $pn s, speed-up $(awk -v a="$par1" -v b="$pn" 'BEGIN {printf "%.2fx", a / b}') on $pj cores"
else
	echo "SKIP GNU Parallel scaling: parallel is not installed"
fi
