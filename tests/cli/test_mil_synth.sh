# CLI tests of mil-synth on CIFAR-10 binary files and class folders that the test generates.
. "$(dirname "$0")/lib.sh"
python3 - "$T" <<'PY'
import os, random, struct, sys, zlib
d = sys.argv[1]; rnd = random.Random(3)
# CIFAR-10 binary: 5 training batches of 200 records and a test batch of 200
os.makedirs(f"{d}/cifar")
def batch(path, n, off):
    with open(path, "wb") as f:
        for i in range(n):
            lab = (i + off) % 10
            f.write(bytes([lab]) + bytes([(lab * 25 + c * 3 + p) % 256 for c in range(3) for p in range(1024)]))
for b in range(5): batch(f"{d}/cifar/data_batch_{b+1}.bin", 200, b)
batch(f"{d}/cifar/test_batch.bin", 200, 0)
# class folders of 16x16 RGB PNGs: TUM positive, 3 negative classes
def png(path, w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))
    chunk = lambda t, data: struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for cls, n, col in [("ADI", 120, (250, 240, 240)), ("LYM", 120, (80, 40, 160)), ("NORM", 120, (220, 150, 190)), ("TUM", 40, (150, 60, 120))]:
    os.makedirs(f"{d}/crc/{cls}")
    for i in range(n): png(f"{d}/crc/{cls}/{cls}-{i:04d}.png", 16, 16, col)
PY
run "$BIN/mil-synth" --cifar "$T/cifar" --pos-class 9 --ratio 0.2 --bag-size 10 -o "$T/c"
# training: 100 of class 9, 900 others, k = 2: P = floor(900/9) = 100 -> 50 positive bags; NegPos 400, NegNeg 500 -> 50
ok "mil-synth on CIFAR-10 binary" '[ $status = 0 ] && has_err "constructed 50+50 training and 10+10 test"'
run "$BIN/bag-info" --json "$T/c/bags/train-p0000.wbag"
ok "CIFAR bags are 32x32x3 with 2 positives" 'has_out "\"shape\":\"32x32x3\"" && has_out "\"positive\":2"'
# no silent caps: the options went into the bags' provenance through 8 KiB of text and
# 4096-byte values (a longer text crashed mil-synth); class 9 with 9000 leading zeros
z9=$(printf '0%.0s' $(seq 9000))9
run "$BIN/mil-synth" -q --cifar "$T/cifar" --pos-class "$z9" --ratio 0.2 --bag-size 10 --max-bags 1 -o "$T/cz"
ok "a 9001-byte option: bags written, the option whole in their provenance" '[ $status = 0 ] && "$BIN/bag-info" "$T/cz/bags/train-p0000.wbag" | grep -q "^ *pos-class=0\{9000\}9$"'
run "$BIN/mil-synth" --cifar "$T/cifar" --ratio 0.2 -o "$T/c2"
ok "CIFAR needs --pos-class" '[ $status = 2 ] && has_err "pos-class"'
run "$BIN/mil-synth" --folder "$T/crc" --pos-class TUM --ratio 0.1 --bag-size 10 --test-frac 0.25 --seed 2 -o "$T/f"
ok "mil-synth on class folders, test held out" '[ $status = 0 ] && has_err "constructed" && grep -q "	test	" "$T/f/manifest.tsv"'
run "$BIN/bag-info" --check "$T"/f/bags/*.wbag
ok "folder bags check" '[ $status = 0 ] && has_out "files ok"'
run "$BIN/bag-info" --json "$T/f/bags/train-p0000.wbag"
ok "folder bags are 16x16x3" 'has_out "\"shape\":\"16x16x3\"" && has_out "\"positive\":1"'
run "$BIN/mil-synth" --folder "$T/crc" --pos-class STR -o "$T/f2"
ok "unknown class name exits 2" '[ $status = 2 ] && has_err "no such class"'
# the paper's counts on Debian's Fashion-MNIST (lib/mil/README.md, the synthetic construction)
FM=/usr/share/datasets/fashion-mnist
if [ -f "$FM/train-images-idx3-ubyte.gz" ]; then
	for c in "0.1 284 47" "0.2 300 50" "0.01 271 45"; do
		read -r r ntr nte <<<"$c"
		run "$BIN/mil-synth" -q --ratio "$r" --max-bags 1 -o "$T/fm$r"
		ok "Fashion-MNIST class 6, r = $r: $ntr+$ntr and $nte+$nte bags" \
			'[ $status = 0 ] && has_err "constructed $ntr+$ntr training and $nte+$nte test"'
	done
else
	echo "SKIP Fashion-MNIST counts: $FM not installed (apt-get install dataset-fashion-mnist)"
fi
rm -rf "$T"
