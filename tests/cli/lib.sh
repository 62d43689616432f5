# tests/cli/lib.sh - helpers for the CLI tests.  Each check prints
# "PASS name" or "FAIL name: ..." with the command's stderr; tests/run.sh
# adds them up.  $BIN is the folder of the built tools.
set -u
BIN=${BIN:-$(pwd)/build/bin}
T=$(mktemp -d "${WENO_TEST_TMP:-/tmp}/cli.XXXXXX")
status=0

# run CMD...: runs it with stdout in $T/out, stderr in $T/err, status in $status
run() {
	"$@" >"$T/out" 2>"$T/err" </dev/null
	status=$?
	return 0
}

# ok NAME SHELL-CONDITION: PASS when the condition holds
ok() {
	local name=$1; shift
	if eval "$*"; then
		echo "PASS $name"
	else
		echo "FAIL $name: [$*] (status $status)"
		sed 's/^/    stderr: /' "$T/err" | head -8
		sed 's/^/    stdout: /' "$T/out" | head -4
	fi
}

has_err() { grep -q -- "$1" "$T/err"; }
has_out() { grep -q -- "$1" "$T/out"; }
no_file() { [ ! -e "$1" ] && [ -z "$(ls -A "$(dirname "$1")" 2>/dev/null | grep -F ".$(basename "$1").tmp-")" ]; }

# fake_idx DIR SEED NTRAIN NTEST: gzipped IDX files shaped like Fashion-MNIST
# in DIR (train-* and t10k-*); image i is class i % 10, a bright 7x7 square
# at a class-dependent place plus noise drawn from random.Random(SEED)
fake_idx() {
	python3 - "$@" <<'PY'
import gzip, struct, sys, random
d, seed, ntrain, ntest = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
def imgs(n):
    labels = bytes(i % 10 for i in range(n))
    pix = bytearray()
    for i in range(n):
        k = i % 10
        for r in range(28):
            for c in range(28):
                on = (r // 7) == (k % 4) and (c // 7) == (k // 4 % 4)
                pix.append(min(255, (200 if on else 0) + rnd.randrange(40)))
    return labels, bytes(pix)
for name, n in [("train", ntrain), ("t10k", ntest)]:
    labels, pix = imgs(n)
    with gzip.open(f"{d}/{name}-images-idx3-ubyte.gz", "wb") as f: f.write(struct.pack(">IIII", 0x803, n, 28, 28) + pix)
    with gzip.open(f"{d}/{name}-labels-idx1-ubyte.gz", "wb") as f: f.write(struct.pack(">II", 0x801, n) + labels)
PY
}
