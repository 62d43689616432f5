#!/usr/bin/env bash
# tests/probe/probe.sh - the probe suite: hostile inputs and hostile
# conditions for every tool, each case with the exit status it must give
# and the promises it must keep (tests/probe/README.md):
#   - the expected exit status (never a crash, never 124: a hang);
#   - no partial file under an output's final name, no temporary left;
#   - no input modified;
#   - no byte of an unrelated file (the canary) in any output;
#   - bounded memory (PROBE_MEM_MB, 2048) and time (PROBE_TIMEOUT, 60 s).
# PROBE_SCALE=quick (make test: a few cases a class) or full (make probe:
# many random truncations, bit flips and interrupts).  Prints
# "PASS probe CLASS: case" / "FAIL probe CLASS: case: why" and ends with
# "probe: N cases tried, N held, N failed".
set -u
BIN=${BIN:-$(pwd)/build/bin}
BUILD=${BUILD:-$(cd "$BIN/.." && pwd)}
SCALE=${PROBE_SCALE:-quick}
TIMEOUT=${PROBE_TIMEOUT:-60}
MEM_MB=${PROBE_MEM_MB:-2048}
W=$(mktemp -d "${WENO_TEST_TMP:-/tmp}/probe.XXXXXX")
trap 'rm -rf "$W"' EXIT
tried=0 held=0 failed=0
if [ "$SCALE" = full ]; then N_CUT=200 N_FLIP=400 N_INT=12; else N_CUT=8 N_FLIP=12 N_INT=2; fi
RANDOM=${PROBE_SEED:-2026}

# the canary: no output may ever contain this
MARK="CANARY-$RANDOM$RANDOM-do-not-copy"
printf '%s\n' "$MARK$MARK$MARK$MARK" >"$W/canary.txt"

verdict() { # class case problem-or-empty
	tried=$((tried + 1))
	if [ -z "$3" ]; then
		held=$((held + 1))
		echo "PASS probe $1: $2"
	else
		failed=$((failed + 1))
		echo "FAIL probe $1: $2: $3"
		sed 's/^/    stderr: /' "$W/err" | head -4
	fi
}

sums() { # files or folders: a line per file, its checksum
	[ $# -gt 0 ] || return 0
	find "$@" -type f -exec cksum {} + 2>/dev/null | sort
}
# a sanitizer build reserves terabytes of address space: no -v bound then
ASAN=$(ldd "$BIN/bag-info" 2>/dev/null | grep -c 'libasan')

# probe CLASS CASE EXPECT -- COMMAND...
#   EXPECT: 0, 1, 2, fail (1 or 2) or any (0, 1 or 2)
#   $IN: files and folders the command reads (checked unchanged)
#   $OUTS: files the command writes (absent after a failure, present after
#   success, never holding the canary); $GREP: a pattern stderr must hold
probe() {
	local class=$1 case=$2 expect=$3
	shift 4
	local before after st problem=
	before=$(sums ${IN:-})
	(
		[ "$ASAN" = 0 ] && ulimit -v $((MEM_MB * 1024)) 2>/dev/null
		exec timeout -s KILL "$TIMEOUT" "$@"
	) >"$W/out" 2>"$W/err" </dev/null
	st=$?
	after=$(sums ${IN:-})
	case "$expect:$st" in
	0:0 | 1:1 | 2:2 | fail:1 | fail:2 | any:0 | any:1 | any:2) ;;
	*:137) problem="killed after ${TIMEOUT}s (a hang) or by the memory bound" ;;
	*) problem="exit status $st, expected $expect" ;;
	esac
	[ -z "$problem" ] && [ "$before" != "$after" ] && problem="an input changed"
	for o in ${OUTS:-}; do
		[ -n "$problem" ] && break
		if [ "$st" != 0 ] && [ -e "$o" ]; then
			problem="output $o exists after a failure"
		elif [ "$st" = 0 ] && [ ! -e "$o" ]; then
			problem="output $o missing after a success"
		elif ls -a "$(dirname "$o")" 2>/dev/null | grep -qF ".$(basename "$o").tmp-"; then
			problem="a temporary of $o was left"
		elif [ -f "$o" ] && grep -qaF "$MARK" "$o"; then
			problem="output $o holds the canary's bytes"
		fi
	done
	[ -z "$problem" ] && grep -qaF "$MARK" "$W/out" && problem="stdout holds the canary's bytes"
	[ -z "$problem" ] && [ -n "${GREP:-}" ] && ! grep -q -- "$GREP" "$W/err" && problem="stderr lacks '$GREP'"
	[ -z "$problem" ] && grep -qE "Segmentation|Aborted|AddressSanitizer|runtime error" "$W/err" &&
		problem="crashed"
	verdict "$class" "$case" "$problem"
	unset IN OUTS GREP
}

# ---- fixtures: a tiny Fashion-MNIST-MIL set, a model, a slide ----
FM=/usr/share/datasets/fashion-mnist
mkdir -p "$W/ds"
if [ -e "$FM/train-images-idx3-ubyte.gz" ]; then
	"$BIN/mil-synth" -q --ratio 0.1 --max-bags 3 --bag-size 20 -o "$W/ds" 2>/dev/null
fi
M=$W/ds/manifest.tsv
BAG=$(ls "$W"/ds/bags/*.wbag 2>/dev/null | head -1)
FIT="$BIN/weno-fit -q --threads 1 --batch 32 --epochs 1"
[ -s "$M" ] && $FIT -m "$M" -o "$W/m.model" 2>/dev/null
MODEL=$W/m.model
"$BIN/slide-synth" -q -o "$W/slide.tif" --xml "$W/slide.xml" --size 2048x1536 --seed 3 2>/dev/null
have_ds() { [ -s "$M" ] && [ -s "$MODEL" ] && [ -n "$BAG" ]; }
if ! have_ds; then
	echo "SKIP probe: no fixture set (Debian's dataset-fashion-mnist is not installed)"
fi

# ---- truncation and bit flips: every one caught by a checksum or a size ----
# One copy of each file: the cuts go from the end towards the start (each
# a truncate of the copy), the flips are made in place and undone.
flip_at() { # file byte bit: flips that bit in place (again to undo it)
	python3 -c "
import sys
f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2])); b = f.read(1)[0]
f.seek(int(sys.argv[2])); f.write(bytes([b ^ (1 << int(sys.argv[3]))])); f.close()" "$@"
}
check_cmd() { # kind file: the reader that must refuse a damaged file
	if [ "$1" = bag ]; then
		echo "$BIN/bag-info --check $2"
	else
		echo "$BIN/weno-score -q --threads 1 $2 -m $M -o $W/damaged.tsv"
	fi
}
if have_ds; then
	for kind in bag model; do
		src=$BAG
		[ $kind = model ] && src=$MODEL
		size=$(stat -c %s "$src")
		cp "$src" "$W/cut.$kind"
		for at in $(for i in $(seq 1 "$N_CUT"); do echo $(((RANDOM * 32768 + RANDOM) % size)); done | sort -rnu); do
			truncate -s "$at" "$W/cut.$kind"
			IN="$W/cut.$kind" OUTS="$W/damaged.tsv" probe truncation "$kind cut at byte $at of $size" 1 -- \
				$(check_cmd $kind "$W/cut.$kind")
		done
		cp "$src" "$W/flip.$kind"
		for i in $(seq 1 "$N_FLIP"); do
			at=$(((RANDOM * 32768 + RANDOM) % size))
			bit=$((RANDOM % 8))
			flip_at "$W/flip.$kind" "$at" "$bit"
			IN="$W/flip.$kind" OUTS="$W/damaged.tsv" probe bit-flip "$kind byte $at bit $bit" 1 -- \
				$(check_cmd $kind "$W/flip.$kind")
			flip_at "$W/flip.$kind" "$at" "$bit"
		done
		rm -f "$W/cut.$kind" "$W/flip.$kind"
	done
fi

# ---- a zstd bomb: a chunk whose frame would inflate to 1 GiB ----
if command -v zstd >/dev/null && have_ds; then
	head -c $((1 << 30)) /dev/zero | zstd -q -19 -c >"$W/bomb.zst"
	python3 - "$BAG" "$W/bomb.zst" "$W/bomb.wbag" <<'PY'
import struct, sys, zlib
bag, frame, out = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3]
b = open(bag, "rb").read()
hsize = struct.unpack_from("<I", b, 12)[0]
n, raw = struct.unpack_from("<II", b, hsize + 4)
hdr = bytearray(b"CHNK" + struct.pack("<III", n, raw, len(frame)))
crc = zlib.crc32(frame, zlib.crc32(bytes(hdr)))
open(out, "wb").write(b[:hsize] + bytes(hdr) + struct.pack("<I", crc) + frame)
PY
	IN="$W/bomb.wbag" probe zstd-bomb "a chunk that inflates to 1 GiB (bag-info --check)" 1 -- \
		"$BIN/bag-info" --check "$W/bomb.wbag"
	IN="$W/bomb.wbag" OUTS="$W/bomb.out.wbag" probe zstd-bomb "the same finalised by bag-pack" 1 -- \
		sh -c "'$BIN/bag-pack' --id x --label 1 -o '$W/bomb.out.wbag' <'$W/bomb.wbag'"
fi

# ---- XML entity expansion (a billion laughs) and external entities ----
python3 - "$W" <<'PY'
import sys
w = sys.argv[1]
ents = '<!ENTITY a0 "laugh">' + "".join('<!ENTITY a%d "&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;">' % ((i,) + (i - 1,) * 10) for i in range(1, 10))
open(w + "/laughs.xml", "w").write('<?xml version="1.0"?><!DOCTYPE r [%s]><ASAP_Annotations><Annotations><Annotation Name="&a9;" PartOfGroup="_0" Type="Polygon"><Coordinates><Coordinate Order="0" X="0" Y="0"/><Coordinate Order="1" X="9" Y="0"/><Coordinate Order="2" X="9" Y="9"/></Coordinates></Annotation></Annotations></ASAP_Annotations>' % ents)
open(w + "/xxe.xml", "w").write('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://%s/canary.txt">]><ASAP_Annotations><Annotations><Annotation Name="&x;" PartOfGroup="_0" Type="Polygon"><Coordinates><Coordinate Order="0" X="0" Y="0"/><Coordinate Order="1" X="9" Y="0"/><Coordinate Order="2" X="9" Y="9"/></Coordinates></Annotation></Annotations></ASAP_Annotations>' % w)
PY
IN="$W/laughs.xml $W/slide.tif" OUTS="$W/laughs.wbag" probe xml-entities "a billion laughs as -a" fail -- \
	"$BIN/wsi-tile" "$W/slide.tif" --mpp 4 --size 64 --a_t 1 -a "$W/laughs.xml" -o "$W/laughs.wbag"
IN="$W/xxe.xml $W/slide.tif" OUTS="$W/xxe.wbag" probe xml-entities "an external entity naming the canary" any -- \
	"$BIN/wsi-tile" "$W/slide.tif" --mpp 4 --size 64 --a_t 1 -a "$W/xxe.xml" -o "$W/xxe.wbag"

# ---- HDF5 features whose data lie in other files ----
if [ -x "$BUILD/tests/probe_mkevil" ]; then
	for kind in external-storage external-link virtual soft-link; do
		"$BUILD/tests/probe_mkevil" $kind "$W/evil.h5" "$W/canary.txt" "$W/other.h5"
		IN="$W/evil.h5 $W/other.h5 $W/canary.txt" OUTS="$W/evil.wbag" GREP="refused" \
			probe hdf5 "$kind" 1 -- "$BIN/bag-pack" --h5 "$W/evil.h5" --label 1 -o "$W/evil.wbag"
	done
fi

# ---- what is not a regular file, and unbounded input ----
mkfifo "$W/fifo"
head -c $((100 << 20)) /dev/zero | tr '\0' x >"$W/huge-line.tsv" # one 100 MB line
IN="$W/slide.tif" OUTS="$W/f.wbag" GREP="FIFO" probe not-a-file "a FIFO as wsi-tile -a" 1 -- \
	"$BIN/wsi-tile" "$W/slide.tif" --mpp 4 --size 64 --a_t 1 -a "$W/fifo" -o "$W/f.wbag"
GREP="FIFO" probe not-a-file "a FIFO as auc-report's scores" 1 -- \
	"$BIN/auc-report" "$W/fifo"
if have_ds; then
	OUTS="$W/f.model" GREP="FIFO" probe not-a-file "a FIFO as weno-fit's manifest" 1 -- $FIT -m "$W/fifo" -o "$W/f.model"
	OUTS="$W/f.model" GREP="a device" probe not-a-file "/dev/zero as weno-fit's manifest" 1 -- \
		$FIT -m /dev/zero -o "$W/f.model"
	OUTS="$W/f.model" GREP="longer than" probe unbounded "a 100 MB line as weno-fit's manifest" 1 -- \
		$FIT -m "$W/huge-line.tsv" -o "$W/f.model"
	# the first bag of the manifest replaced by the FIFO
	awk -F'\t' -v OFS='\t' -v f="$W/fifo" '/^#/ {print; next} !h {h = 1; for (i = 1; i <= NF; i++) if ($i == "path") c = i; print; next} !done {$c = f; done = 1} {print}' "$M" >"$W/fifo-bag.tsv"
	IN="$W/fifo-bag.tsv" OUTS="$W/f.model" GREP="FIFO" probe not-a-file "a FIFO as a bag in a manifest" 1 -- \
		$FIT -m "$W/fifo-bag.tsv" -o "$W/f.model"
fi
IN="$W/huge-line.tsv" GREP="longer than" probe unbounded "a 100 MB line as auc-report's scores" 1 -- \
	"$BIN/auc-report" "$W/huge-line.tsv"

# ---- byte-order marks, repeated ids ----
if have_ds; then
	printf '\xef\xbb\xbf' | cat - "$M" >"$W/bom.tsv"
	sed "s#	bags/#	$W/ds/bags/#" "$W/bom.tsv" >"$W/bom2.tsv"
	IN="$W/bom2.tsv" OUTS="$W/bom.scores.tsv" probe byte-order-mark "a manifest with a BOM scores" 0 -- \
		"$BIN/weno-score" -q --threads 1 "$MODEL" -m "$W/bom2.tsv" --split all -o "$W/bom.scores.tsv"
	if [ -s "$W/bom.scores.tsv" ]; then
		printf '\xef\xbb\xbf' | cat - "$W/bom.scores.tsv" >"$W/bom2.scores.tsv"
		IN="$W/bom2.scores.tsv" probe byte-order-mark "a scores table with a BOM keeps bag and instance apart" 0 -- \
			sh -c "'$BIN/auc-report' -b 0 --split all '$W/bom2.scores.tsv' | grep -q '^instance'"
	fi
	# the first bag listed again at the end
	awk '/^#/ {print; next} !h {h = 1; print; next} !first {first = $0} {print} END {print first}' "$M" |
		sed "s#	bags/#	$W/ds/bags/#" >"$W/dup.tsv"
	IN="$W/dup.tsv" OUTS="$W/dup.model" GREP="again, as on line 3" probe duplicate-ids "a bag listed twice in a manifest" 1 -- \
		$FIT -m "$W/dup.tsv" -o "$W/dup.model"
fi

# ---- a model with a NaN, its checksums intact ----
if have_ds; then
	python3 - "$MODEL" "$W/nan.model" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
off = 40
while off < len(b):
    tag, crc, ln = bytes(b[off:off + 4]), *struct.unpack_from("<IQ", b, off + 4)
    if tag == b"MODL":
        end = off + 16 + ln
        b[end - 4:end] = struct.pack("<f", float("nan"))  # the module's last BN statistic
        struct.pack_into("<I", b, off + 4, zlib.crc32(bytes(b[off + 16:end])))
        break
    off += 16 + ln
open(sys.argv[2], "wb").write(bytes(b))
PY
	IN="$W/nan.model" OUTS="$W/nan.tsv" GREP="NaN, expected a finite number" probe non-finite "a NaN in a model" 1 -- \
		"$BIN/weno-score" -q --threads 1 "$W/nan.model" -m "$M" -o "$W/nan.tsv"
fi

# ---- a slide whose every tile is corrupt ----
python3 - "$W/slide.tif" "$W/dead.tif" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
off = struct.unpack_from("<I", b, 4)[0]
tags = {}
for i in range(struct.unpack_from("<H", b, off)[0]):
    t, ty, cnt, val = struct.unpack_from("<HHII", b, off + 2 + 12 * i)
    tags[t] = (cnt, val)
cnt, offs = tags[324]
cnts = tags[325][1]
for k in range(cnt):
    o, c = struct.unpack_from("<I", b, offs + 4 * k)[0], struct.unpack_from("<I", b, cnts + 4 * k)[0]
    for i in range(o + 10, o + c - 2):
        b[i] = (i * 37) & 0xFF
open(sys.argv[2], "wb").write(bytes(b))
PY
IN="$W/dead.tif" OUTS="$W/dead.wbag" GREP="patches to write was lost" probe corrupt-slide "every level-0 tile corrupt" 1 -- \
	"$BIN/wsi-tile" "$W/dead.tif" --mpp 0.25 --size 256 --a_t 1 --max-tiles 10 -o "$W/dead.wbag"

# ---- an output that is an input: refused, the input intact ----
cp "$W/slide.tif" "$W/self.tif"
cp "$W/slide.xml" "$W/self.xml"
IN="$W/self.tif" GREP="it is the input" probe output-is-input "wsi-tile -o onto the slide" fail -- \
	"$BIN/wsi-tile" "$W/self.tif" --mpp 4 --size 64 --a_t 1 -o "$W/self.tif"
IN="$W/self.tif $W/self.xml" GREP="it is the input" probe output-is-input "wsi-tile --contours onto -a" fail -- \
	"$BIN/wsi-tile" "$W/self.tif" --mpp 4 --size 64 --a_t 1 -a "$W/self.xml" --contours "$W/self.xml" -o "$W/self.wbag"
IN="$W/self.tif" GREP="it is the input" probe output-is-input "wsi-tile --thumbnail onto the slide" fail -- \
	"$BIN/wsi-tile" "$W/self.tif" --mpp 4 --size 64 --a_t 1 --thumbnail "$W/self.tif" -o "$W/self.wbag"
if have_ds; then
	cp "$M" "$W/ds/self.tsv"
	IN="$W/ds/self.tsv" GREP="it is the input" probe output-is-input "weno-score -o onto the manifest" fail -- \
		"$BIN/weno-score" -q --threads 1 "$MODEL" -m "$W/ds/self.tsv" -o "$W/ds/self.tsv"
	IN="$W/ds" GREP="it is the input" probe output-is-input "weno-score -o onto a bag" fail -- \
		"$BIN/weno-score" -q --threads 1 "$MODEL" -m "$M" -o "$BAG"
	"$BIN/weno-score" -q --threads 1 "$MODEL" -m "$M" --split all -o "$W/scores.tsv" 2>/dev/null
	IN="$W/scores.tsv" GREP="it is the input" probe output-is-input "auc-report --tsv onto the scores" fail -- \
		"$BIN/auc-report" -b 0 --split all --tsv "$W/scores.tsv" "$W/scores.tsv"
fi
python3 - "$W/feat.npy" <<'PY'
import struct, sys
h = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }".ljust(117) + b"\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + struct.pack("<12f", *range(12)))
PY
"$BIN/bag-pack" --npy "$W/feat.npy" --id feat --label 1 -o "$W/feat.wbag" 2>/dev/null
IN="$W/feat.wbag" GREP="it is the input" probe output-is-input "bag-pack --export onto its bag" fail -- \
	"$BIN/bag-pack" --export npy "$W/feat.wbag" -o "$W/feat.wbag"

# ---- stdout that cannot take the output: exit 1, said ----
for cmd in "bag-info --json $W/feat.wbag" "bag-info --instances $W/feat.wbag" "bag-info $W/feat.wbag" "weno-fit --help" \
	"auc-report --version"; do
	GREP="cannot write to standard output" probe stdout-full "$cmd >/dev/full" 1 -- sh -c "'$BIN/'$cmd >/dev/full"
done
if have_ds; then
	GREP="cannot write to standard output" probe stdout-full "auc-report >/dev/full" 1 -- \
		sh -c "'$BIN/auc-report' -b 0 --split all '$W/scores.tsv' >/dev/full"
	GREP="cannot write to standard output" probe stdout-full "auc-compare >/dev/full" 1 -- \
		sh -c "'$BIN/auc-compare' --split all '$W/scores.tsv' '$W/scores.tsv' >/dev/full"
fi

# ---- names that break lines, columns or JSON ----
"$BIN/bag-pack" --npy "$W/feat.npy" --id "$(printf 'a\tb\nc\377')" --label 1 -o "$W/weird.wbag" 2>/dev/null
IN="$W/weird.wbag" probe escaping "bag-info --json of an id with a tab, a newline, a stray byte is JSON" 0 -- \
	sh -c "'$BIN/bag-info' --json '$W/weird.wbag' | python3 -c 'import json, sys; json.load(sys.stdin)'"
IN="$W/weird.wbag" probe escaping "bag-info --instances of it keeps its columns" 0 -- \
	sh -c "'$BIN/bag-info' --instances '$W/weird.wbag' '$W/weird.wbag' | awk -F'\t' 'NF != 6 { exit 1 }'"

# ---- labels CSV: repeated slides, paths out of the folder, patients in two splits, a FIFO ----
mkdir -p "$W/lb"
cp "$W/feat.wbag" "$W/lb/s1.wbag"
cp "$W/feat.wbag" "$W/lb/s2.wbag"
for c in "dup|slide_id,label\ns1,1\ns2,0\ns1,0\n|again, as on line 2" "escape|slide_id,label\n../lb/s1,1\n|holds a '/'" \
	"straddle|slide_id,label,case_id,split\ns1,1,P,train\ns2,0,P,test\n|has slides in train" ; do
	name=${c%%|*} rest=${c#*|} text=${rest%|*} want=${rest##*|}
	printf "$text" >"$W/lb/$name.csv"
	IN="$W/lb" OUTS="$W/lb.$name.tsv" GREP="$want" probe labels-csv "$name" 1 -- \
		"$BIN/bag-pack" --manifest "$W/lb/$name.csv" --bag-dir "$W/lb" -o "$W/lb.$name.tsv"
done
OUTS="$W/lb.fifo.tsv" GREP="FIFO" probe labels-csv "a FIFO as the labels CSV" 1 -- \
	"$BIN/bag-pack" --manifest "$W/fifo" --bag-dir "$W/lb" -o "$W/lb.fifo.tsv"

# ---- score tables: a case twice, nothing but NA ----
printf 'kind\tsplit\tbag_id\tindex\tlabel\ts_score\nbag\ttest\ta\t\t1\t0.9\nbag\ttest\tb\t\t0\t0.2\nbag\ttest\ta\t\t0\t0.1\n' >"$W/dupk.tsv"
IN="$W/dupk.tsv" GREP="line 4: the bag row of bag 'a' again, as on line 2" probe duplicate-ids "a case twice for auc-compare" 1 -- \
	"$BIN/auc-compare" "$W/dupk.tsv" "$W/dupk.tsv"
printf 'kind\tsplit\tlabel\tstudent_score\nbag\ttest\t1\tNA\nbag\ttest\t0\tNA\n' >"$W/na.tsv"
IN="$W/na.tsv" GREP="nothing to compute" probe all-na "auc-report on a table of NA scores" 1 -- "$BIN/auc-report" -b 0 "$W/na.tsv"

# ---- interrupts: the checkpoint survives and resumes; a SIGKILL's
# temporary is removed by the next run ----
if have_ds; then
	for i in $(seq 1 "$N_INT"); do
		rm -f "$W"/int.model*
		$FIT -m "$M" --epochs 1000 -o "$W/int.model" 2>"$W/err" &
		pid=$!
		for k in $(seq 1 300); do [ -s "$W/int.model.last" ] && break; sleep 0.05; done
		sleep "0.$((RANDOM % 9 + 1))"
		kill -TERM $pid
		wait $pid
		st=$?
		problem=
		[ $st = 1 ] || problem="exit status $st after SIGTERM, expected 1"
		[ -z "$problem" ] && ! "$BIN/weno-score" -q --threads 1 "$W/int.model.last" -m "$M" -o /dev/null 2>>"$W/err" &&
			problem="the checkpoint does not load"
		[ -z "$problem" ] && ls -a "$W" | grep -q '^\.int\.model.*\.tmp-' && problem="a temporary was left"
		verdict interrupt "SIGTERM during training ($i)" "$problem"
	done
	rm -f "$W"/int.model* "$W"/.int.model*
	$FIT -m "$M" --epochs 1000 -o "$W/int.model" 2>/dev/null &
	pid=$!
	for k in $(seq 1 600); do ls -a "$W" | grep -q '^\.int\.model.*\.tmp-' && break; sleep 0.01; done
	kill -KILL $pid
	wait $pid 2>/dev/null
	left=$(ls -a "$W" | grep -c '^\.int\.model.*\.tmp-')
	OUTS="$W/int.model" probe interrupt "after a SIGKILL the next run trains" 0 -- $FIT -m "$M" -o "$W/int.model"
	problem=
	ls -a "$W" | grep -q '^\.int\.model.*\.tmp-' && problem="the killed run's temporary is still there"
	[ "$left" -gt 0 ] && [ -z "$problem" ] && ! grep -q "the temporary file of an earlier run that was killed" "$W/err" &&
		problem="the removal was not said"
	verdict interrupt "a SIGKILL's temporary ($left left) removed by the next run, and said" "$problem"
fi

echo "probe: $tried cases tried, $held held, $failed failed"
[ "$failed" = 0 ]
