# CLI tests of bag-info and bag-pack: round trips, bad input, exit codes.
. "$(dirname "$0")/lib.sh"
FM=/usr/share/datasets/fashion-mnist

# a small pixel dataset from generated IDX files, so the test needs no package
python3 - "$T" <<'PY'
import gzip, struct, sys, random
d = sys.argv[1]; random.seed(1)
n = 600
labels = bytes(i % 10 for i in range(n))
pix = bytes(random.randrange(256) for _ in range(n * 28 * 28))
with gzip.open(f"{d}/train-images-idx3-ubyte.gz", "wb") as f: f.write(struct.pack(">IIII", 0x803, n, 28, 28) + pix)
with gzip.open(f"{d}/train-labels-idx1-ubyte.gz", "wb") as f: f.write(struct.pack(">II", 0x801, n) + labels)
with open(f"{d}/t10k-images-idx3-ubyte", "wb") as f: f.write(struct.pack(">IIII", 0x803, 300, 28, 28) + pix[:300*784])
with open(f"{d}/t10k-labels-idx1-ubyte", "wb") as f: f.write(struct.pack(">II", 0x801, 300) + labels[:300])
# features for the import tests
import array
feats = array.array("f", [random.gauss(0, 1) for _ in range(50 * 8)])
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (50, 8), }"
hdr = hdr + " " * (63 - (10 + len(hdr)) % 64) + "\n"
with open(f"{d}/feats.npy", "wb") as f: f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + feats.tobytes())
hdr = "{'descr': '<i4', 'fortran_order': False, 'shape': (50, 8), }"
hdr = hdr + " " * (63 - (10 + len(hdr)) % 64) + "\n"
with open(f"{d}/ints.npy", "wb") as f: f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + bytes(50 * 8 * 4))
with open(f"{d}/feats.csv", "w") as f:
    f.write(",".join(str(i) for i in range(8)) + "\n")
    for i in range(50): f.write(",".join("%.6f" % feats[i * 8 + j] for j in range(8)) + "\n")
with open(f"{d}/missing-col.csv", "w") as f: f.write("0,1,2\n1,2,3\n4,5\n")
with open(f"{d}/nonnum.csv", "w") as f: f.write("0,1,2\n1,2,3\n4,x,6\n")
PY

# --- mil-synth on the generated set ---
run "$BIN/mil-synth" --idx "$T" --pos-class 3 --ratio 0.1 --bag-size 10 --seed 5 -o "$T/ds"
ok "mil-synth builds bags" '[ $status = 0 ] && [ -f "$T/ds/manifest.tsv" ] && has_err "constructed"'
# 60 positives, 540 negatives, r = 0.1, n = 10, k = 1: P = floor(540/19) = 28;
# NegPos = int(28*0.9/0.1) = int(251.99999999999997) = 251 -> 243 (27 bags), so
# step 4 lowers P to 27, exactly as the authors' Python arithmetic does.
# 30 positives and 270 negatives in the test split: P = 14, NegPos = int(125.99999999999999) -> 117 (13 bags)
ok "mil-synth counts follow the construction" 'has_err "constructed 27+28 training and 13+14 test"'
ok "manifest header" 'grep -q "^bag_id	label	split	path	n_instances$" "$T/ds/manifest.tsv"'
ok "manifest has val rows" '[ $(grep -c "	val	" "$T/ds/manifest.tsv") -eq 6 ]'
cp -r "$T/ds" "$T/ds1"
run "$BIN/mil-synth" --idx "$T" --pos-class 3 --ratio 0.1 --bag-size 10 --seed 5 -o "$T/ds2" -q
ok "same seed, same bags" 'cmp -s "$T/ds1/bags/train-p0003.wbag" "$T/ds2/bags/train-p0003.wbag" && diff -q <(grep -v "^#" "$T/ds1/manifest.tsv") <(grep -v "^#" "$T/ds2/manifest.tsv") >/dev/null'
run "$BIN/mil-synth" --idx "$T" --pos-class 3 --ratio 0.1 --bag-size 10 --seed 6 -o "$T/ds3" -q
ok "another seed, other bags" '! cmp -s "$T/ds1/bags/train-p0003.wbag" "$T/ds3/bags/train-p0003.wbag"'
run "$BIN/mil-synth" --idx "$T" --pos-class 42 -o "$T/bad"
ok "mil-synth unknown class exits 2" '[ $status = 2 ] && has_err "no such class"'
run "$BIN/mil-synth" --idx /nonexistent -o "$T/bad"
ok "mil-synth missing input exits 1" '[ $status = 1 ] && has_err "/nonexistent"'
run "$BIN/mil-synth" --ratio 1.5 -o "$T/bad"
ok "mil-synth bad ratio exits 2" '[ $status = 2 ] && has_err "ratio"'

B="$T/ds/bags/train-p0000.wbag"
run "$BIN/bag-info" "$B"
ok "bag-info prints header" '[ $status = 0 ] && has_out "train-p0000" && has_out "10 pixels 28x28x1" && has_out "1 with label > 0"'
run "$BIN/bag-info" --check "$T"/ds/bags/*.wbag
ok "bag-info --check accepts what mil-synth wrote" '[ $status = 0 ] && [ $(grep -c ": ok" "$T/out") = $(ls "$T"/ds/bags | wc -l) ]'
run "$BIN/bag-info" --json "$B"
ok "bag-info --json" '[ $status = 0 ] && has_out "\"instances\":10" && has_out "\"label\":1" && has_out "\"tool\":\"mil-synth\""'
run "$BIN/bag-info" --instances "$B"
ok "bag-info --instances" '[ $status = 0 ] && [ "$(head -1 "$T/out")" = "$(printf "index\tx\ty\ttissue\tlabel")" ] && [ $(tail -n +2 "$T/out" | wc -l) = 10 ] && [ $(awk "NR>1 && \$5==1" "$T/out" | wc -l) = 1 ]'

# --- corruption ---
cp "$B" "$T/flip.wbag"
size=$(stat -c %s "$B")
printf '\xff' | dd of="$T/flip.wbag" bs=1 seek=$((size / 2)) conv=notrunc status=none
run "$BIN/bag-info" --check "$T/flip.wbag"
ok "flipped byte: exit 1, names file and byte" '[ $status = 1 ] && has_err "flip.wbag: byte [0-9]*" && has_err "corrupt\|checksum"'
head -c $((size - 10)) "$B" >"$T/trunc.wbag"
run "$BIN/bag-info" "$T/trunc.wbag"
ok "truncated bag: exit 1" '[ $status = 1 ] && has_err "trunc.wbag: byte" && has_err "ends inside"'
printf 'PK\x03\x04 not a bag at all, really not' >"$T/magic.wbag"
run "$BIN/bag-info" "$T/magic.wbag"
ok "wrong magic: exit 1" '[ $status = 1 ] && has_err "magic.wbag: byte 0: bad magic"'
{ head -c 12 "$B"; printf '\xff\xff\xff\x7f'; tail -c +17 "$B"; } >"$T/huge.wbag"
run "$BIN/bag-info" "$T/huge.wbag"
ok "huge header size: exit 1, no allocation" '[ $status = 1 ] && has_err "huge.wbag: byte 12: header size"'
run "$BIN/bag-info" "$T/nope.wbag"
ok "unreadable path: exit 1" '[ $status = 1 ] && has_err "cannot open .*nope.wbag"'
run "$BIN/bag-info" "$B" "$T/nope.wbag"
ok "batch goes on, fails at the end" '[ $status = 1 ] && has_out "train-p0000" && has_err "1 of 2 files failed"'
run "$BIN/bag-info" --bogus
ok "unknown option exits 2" '[ $status = 2 ] && has_err "unknown option" && has_err "try .bag-info --help."'
run "$BIN/bag-info" --help
ok "--help on stdout, exit 0" '[ $status = 0 ] && has_out "^usage: bag-info" && [ ! -s "$T/err" ]'
run "$BIN/bag-pack" --version
ok "--version" '[ $status = 0 ] && has_out "^bag-pack [0-9]"'

# --- bag-pack: finalise a stream from stdin ---
"$BIN/bag-pack" --id relabelled --label 0 -o "$T/re.wbag" <"$B" 2>"$T/err"; status=$?
ok "bag-pack finalises a stream from stdin" '[ $status = 0 ] && "$BIN/bag-info" --check "$T/re.wbag" >/dev/null'
run "$BIN/bag-info" --json "$T/re.wbag"
ok "finalised bag has the new id and label" 'has_out "\"id\":\"relabelled\"" && has_out "\"label\":0" && has_out "packed_by"'
cat "$B" | "$BIN/bag-pack" --label 1 > "$T/piped.wbag" 2>"$T/err"; status=$?
ok "bag-pack pipe to pipe" '[ $status = 0 ] && "$BIN/bag-info" --check "$T/piped.wbag" >/dev/null'
run "$BIN/bag-pack" --label 2 -o "$T/x.wbag" "$B"
ok "label other than 0/1 exits 2" '[ $status = 2 ] && has_err "expected 0, 1 or unknown"'
run "$BIN/bag-pack" -o "$T/x.wbag" "$T/flip.wbag"
ok "corrupt stream: exit 1, nothing written" '[ $status = 1 ] && no_file "$T/x.wbag"'

# --- features ---
run "$BIN/bag-pack" --npy "$T/feats.npy" --id s1 --label 1 -o "$T/f.wbag"
ok "import .npy" '[ $status = 0 ] && "$BIN/bag-info" --check "$T/f.wbag" >/dev/null'
# no silent caps: bag-info --json printed provenance values through a 4096-byte buffer
src=$(printf 's%.0s' $(seq 5000))
run "$BIN/bag-pack" --npy "$T/feats.npy" --source "$src" --label 1 -o "$T/src.wbag"
run "$BIN/bag-info" --json "$T/src.wbag"
ok "bag-info --json: a 5000-byte provenance value whole" '[ $status = 0 ] && python3 -c "import json,sys; p = json.load(open(sys.argv[1]))[\"provenance\"]; assert p[\"source\"] == \"s\" * 5000, len(p[\"source\"])" "$T/out"'
# bag-pack kept its options as provenance through 4096-byte values
run "$BIN/bag-info" "$T/src.wbag"
ok "bag-pack: a 5000-byte option whole in the provenance" '[ $status = 0 ] && grep -q "^ *bag-pack.source=s\{5000\}$" "$T/out"'
long_id=$(printf 'i%.0s' $(seq 300))
run "$BIN/bag-pack" --npy "$T/feats.npy" --id "$long_id" --label 1 -o "$T/longid.wbag"
ok "a 300-byte --id: exit 2 naming the limit (it was cut to 255)" '[ $status = 2 ] && has_err "at most 255" && no_file "$T/longid.wbag"'
run "$BIN/bag-pack" --export npy "$T/f.wbag" -o "$T/back.npy"
ok "export .npy round trip is byte-identical" '[ $status = 0 ] && cmp -s "$T/feats.npy" "$T/back.npy"'
run "$BIN/bag-pack" --export h5 "$T/f.wbag" -o "$T/f.h5"
ok "export .h5" '[ $status = 0 ] && [ -s "$T/f.h5" ]'
run "$BIN/bag-pack" --h5 "$T/f.h5" --id s1 --label 1 -o "$T/f2.wbag"
ok "import .h5" '[ $status = 0 ]'
run "$BIN/bag-pack" --export npy "$T/f2.wbag" -o "$T/back2.npy"
ok "h5 round trip keeps the features" '[ $status = 0 ] && cmp -s "$T/feats.npy" "$T/back2.npy"'
run "$BIN/bag-pack" --csv "$T/feats.csv" --label 0 -o "$T/c.wbag"
ok "import DSMIL CSV" '[ $status = 0 ] && "$BIN/bag-info" --json "$T/c.wbag" >"$T/j" && grep -q "\"instances\":50" "$T/j" && grep -q "\"id\":\"feats\"" "$T/j"'
run "$BIN/bag-pack" --csv "$T/missing-col.csv" --label 0 -o "$T/x.wbag"
ok "CSV missing column: exit 1, names line" '[ $status = 1 ] && has_err "missing-col.csv: line 3" && no_file "$T/x.wbag"'
run "$BIN/bag-pack" --csv "$T/nonnum.csv" --label 0 -o "$T/x.wbag"
ok "CSV non-numeric: exit 1, names line and column" '[ $status = 1 ] && has_err "nonnum.csv: line 3, column 2" && no_file "$T/x.wbag"'
run "$BIN/bag-pack" --npy "$T/ints.npy" --label 0 -o "$T/x.wbag"
ok "npy wrong dtype: exit 1" '[ $status = 1 ] && has_err "ints.npy" && has_err "<i4" && no_file "$T/x.wbag"'
run "$BIN/bag-pack" --export npy "$B" -o "$T/x.npy"
ok "export of a pixel bag is refused" '[ $status -ne 0 ] && has_err "feature" && no_file "$T/x.npy"'

# --- manifest from labels CSV ---
mkdir -p "$T/mb"
cp "$T/f.wbag" "$T/mb/s1.wbag"; cp "$T/c.wbag" "$T/mb/s2.wbag"; cp "$T/f.wbag" "$T/mb/s3.wbag"; cp "$T/c.wbag" "$T/mb/s4.wbag"
printf 'case_id,slide_id,label\nc1,s1,1\nc2,s2,0\nc3,s3,1\nc4,s4,0\n' >"$T/labels.csv"
run "$BIN/bag-pack" --manifest "$T/labels.csv" --bag-dir "$T/mb" -o "$T/m.tsv"
ok "manifest from labels CSV" '[ $status = 0 ] && [ $(grep -c "	train	" "$T/m.tsv") = 4 ] && grep -q "^s2	0	train	mb/s2.wbag	50$" "$T/m.tsv"'
mkdir -p "$T/sub/dir"
(cd "$T/sub" && "$BIN/bag-pack" --manifest ../labels.csv --bag-dir ../mb -o dir/m.tsv 2>/dev/null)
ok "manifest paths are relative to the manifest's folder" 'grep -q "^s1	1	train	../../mb/s1.wbag	50$" "$T/sub/dir/m.tsv"'
printf 'slide_id,label\ns1,tumor\ns2,normal\n' >"$T/text.csv"
run "$BIN/bag-pack" --manifest "$T/text.csv" --bag-dir "$T/mb" -o "$T/m2.tsv"
ok "text labels need a mapping" '[ $status = 1 ] && has_err "text.csv: line 2, column label" && no_file "$T/m2.tsv"'
run "$BIN/bag-pack" --manifest "$T/text.csv" --bag-dir "$T/mb" --positive tumor --negative normal -o "$T/m2.tsv"
ok "text labels mapped" '[ $status = 0 ] && grep -q "^s1	1	" "$T/m2.tsv"'
# no silent caps: a labels CSV was split into 64 fields at most, the rest dropped
python3 - "$T/wide.csv" <<'PY'
import sys
cols = [f"c{i}" for i in range(65)] + ["slide_id", "label", "c67", "c68", "c69"]
with open(sys.argv[1], "w") as f:
    f.write(",".join(cols) + "\n")
    for s, l in (("s1", 1), ("s2", 0)):
        f.write(",".join(s if c == "slide_id" else str(l) if c == "label" else "x" for c in cols) + "\n")
PY
run "$BIN/bag-pack" --manifest "$T/wide.csv" --bag-dir "$T/mb" -o "$T/wide.tsv"
ok "a labels CSV of 70 columns, slide_id the 66th" '[ $status = 0 ] && grep -q "^s1	1	train	mb/s1.wbag	50$" "$T/wide.tsv" && grep -q "^s2	0	" "$T/wide.tsv"'
printf 'slide_id,label\ns1,1\nmissing,0\n' >"$T/miss.csv"
run "$BIN/bag-pack" --manifest "$T/miss.csv" --bag-dir "$T/mb" -o "$T/m3.tsv"
ok "manifest with a missing bag: exit 1" '[ $status = 1 ] && has_err "missing.wbag" && no_file "$T/m3.tsv"'
# the validation split by patient: 12 patients of 1 to 3 slides; no patient in two splits
mkdir -p "$T/pb"
printf 'slide_id,label,case_id\n' >"$T/cases.csv"
for p in $(seq 0 11); do
	for s in $(seq 0 $((p % 3))); do
		cp "$T/f.wbag" "$T/pb/p${p}s$s.wbag"
		echo "p${p}s$s,$((p % 2)),P$p" >>"$T/cases.csv"
	done
done
run "$BIN/bag-pack" --manifest "$T/cases.csv" --bag-dir "$T/pb" --val-frac 0.34 --seed 3 -o "$T/cases.tsv"
straddle=$(awk -F'\t' 'NR > 2 { p = $1; sub(/s[0-9]+$/, "", p); if ((p in sp) && sp[p] != $3) print p; sp[p] = $3 }' "$T/cases.tsv")
ok "--val-frac moves whole patients: none straddles train and val" '[ $status = 0 ] && [ -z "$straddle" ] && [ $(awk -F"\t" "NR > 2 && \$3 == \"val\" && \$1 ~ /s0$/" "$T/cases.tsv" | wc -l) = 4 ]'
printf 'slide_id,label,case_id,split\np0s0,1,P0,train\np1s0,1,P0,test\n' >"$T/straddle.csv"
run "$BIN/bag-pack" --manifest "$T/straddle.csv" --bag-dir "$T/pb" -o "$T/s.tsv"
ok "a patient given in two splits: exit 1 naming both lines" '[ $status = 1 ] && has_err "case .P0. has slides in train (line 2) and in test (line 3)" && no_file "$T/s.tsv"'
printf 'slide_id,label\ns1,1\ns2,0\ns1,0\n' >"$T/dup.csv"
run "$BIN/bag-pack" --manifest "$T/dup.csv" --bag-dir "$T/mb" -o "$T/d.tsv"
ok "a slide listed twice, with the other label: exit 1 naming both lines" '[ $status = 1 ] && has_err "line 4: slide .s1. again, as on line 2, with the other label" && no_file "$T/d.tsv"'
printf 'slide_id,label\n../mb/s1,1\n' >"$T/esc.csv"
run "$BIN/bag-pack" --manifest "$T/esc.csv" --bag-dir "$T/pb" -o "$T/e.tsv"
ok "a slide_id with ../ (outside --bag-dir): exit 1" '[ $status = 1 ] && has_err "holds a ./." && no_file "$T/e.tsv"'
printf '\xef\xbb\xbfslide_id,label\r\ns1,1\r\n' >"$T/bom.csv"
run "$BIN/bag-pack" --manifest "$T/bom.csv" --bag-dir "$T/mb" -o "$T/b.tsv"
ok "a labels CSV with a byte-order mark and CR LF" '[ $status = 0 ] && grep -q "^s1	1	train	mb/s1.wbag	50$" "$T/b.tsv"'
run "$BIN/bag-pack" --manifest "$T/bom.csv" --bag-dir "$T/mb" -o "$T/bom.csv"
ok "the output onto the labels CSV is refused, the CSV intact" '[ $status = 2 ] && has_err "it is the input" && head -c 3 "$T/bom.csv" | od -An -tx1 | grep -q "ef bb bf"'
# ids and provenance with tabs, newlines and bytes that are not UTF-8: the JSON stays JSON, the TSV
# keeps its columns
python3 -c "import struct; h = b\"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\".ljust(117) + b'\\n'; open('$T/w.npy', 'wb').write(b'\\x93NUMPY\\x01\\x00' + struct.pack('<H', len(h)) + h + struct.pack('<6f', 1, 2, 3, 4, 5, 6))"
run "$BIN/bag-pack" --npy "$T/w.npy" --id "$(printf 'a\tb\nc\377')" --label 1 --source "$(printf 'x\ty\303')" -o "$T/weird.wbag"
ok "an id with a tab, a newline and a stray byte packs" '[ $status = 0 ]'
run "$BIN/bag-info" --json "$T/weird.wbag"
ok "bag-info --json of it is valid JSON" '[ $status = 0 ] && python3 -c "import json, sys; d = json.load(open(sys.argv[1])); assert d[\"id\"] == \"a\\tb\\nc\\ufffd\", d[\"id\"]" "$T/out"'
run "$BIN/bag-info" --instances "$T/weird.wbag" "$T/weird.wbag"
ok "bag-info --instances keeps six columns a row" '[ $status = 0 ] && [ "$(awk -F"\t" "{ print NF }" "$T/out" | sort -u)" = 6 ] && has_out "^a\\\\tb\\\\nc\\\\xff	0	"'
"$BIN/bag-info" --json "$T/weird.wbag" >/dev/full 2>"$T/err"
status=$?
ok "bag-info on a full disk: exit 1, said" '[ $status = 1 ] && has_err "cannot write to standard output"'
rm -rf "$T"
