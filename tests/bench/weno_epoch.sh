#!/usr/bin/env bash
# tests/bench/weno_epoch.sh - one epoch of ABMIL+WENO on Fashion-MNIST-MIL at
# r = 10 % (284+284 training bags of 100, 10 % of them val, 47+47 test bags):
# weno-fit --epochs 1 --eval-test against its PyTorch twin (weno_torch.py:
# same networks, same passes, same thread count).  Prints both epoch times,
# both peak RSS (/usr/bin/time -v) and the ratio, and checks the targets of
# issue #5: at most 120 s per epoch on the CPU, peak memory under 2 GB.
#
# The epoch of weno-fit is the `seconds` column of its log (teacher pass,
# student pass, val and test evaluation; model saving excluded); it includes
# decoding the .wbag files, which stay in its bag cache.  The twin builds its
# bags from the IDX files into memory before its clock starts.
#
# Run it on an otherwise idle machine (see nn.sh): a busy core stalls every
# OpenMP barrier of both sides.  The load average is printed before and after.
# BUILD (default build) is the build folder; WENO_BENCH_THREADS (default 2)
# the thread count of both sides; WENO_BENCH_EPOCHS (default 1) lengthens both
# runs (the time is then per epoch, averaged); WENO_BENCH_DATA=DIR reuses a
# dataset mil-synth already built (DIR/manifest.tsv) instead of a temp one;
# WENO_BENCH_MAX_BAGS=N (a smoke test, not the benchmark) keeps at most N bags
# of each label per split on both sides.
set -u
BUILD=${BUILD:-build}
BIN=$BUILD/bin
T=${WENO_BENCH_THREADS:-2}
EP=${WENO_BENCH_EPOCHS:-1}
MAXB=${WENO_BENCH_MAX_BAGS:-0}
PY=/usr/bin/python3
TIME=/usr/bin/time
HERE=$(dirname "$0")
D=$(mktemp -d "${TMPDIR:-/tmp}/wenobench.XXXXXX")
trap 'rm -rf "$D"' EXIT

for b in mil-synth weno-fit; do
	[ -x "$BIN/$b" ] || { echo "$BIN/$b not found: run make first"; exit 1; }
done
[ -x "$TIME" ] || { echo "$TIME not found (apt-get install time)"; exit 1; }

rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }

load() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null; }

DATA=${WENO_BENCH_DATA:-}
if [ -z "$DATA" ]; then
	DATA=$D/fm10
	s0=$(date +%s.%N)
	"$BIN/mil-synth" --ratio 0.1 --max-bags "$MAXB" -q -o "$DATA" >"$D/synth.out" 2>&1 || { cat "$D/synth.out"; exit 1; }
	echo "mil-synth: Fashion-MNIST-MIL r = 0.1 in $(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
fi
[ -f "$DATA/manifest.tsv" ] || { echo "$DATA/manifest.tsv not found"; exit 1; }
echo "bags (train/val/test): $(awk -F'\t' 'NR > 1 {n[$3]++} END {printf "%d/%d/%d", n["train"], n["val"], n["test"]}' "$DATA/manifest.tsv")"
echo "threads: $T, epochs: $EP, cores: $(nproc), load average before: $(load)"

# ---- ours ----
$TIME -v "$BIN/weno-fit" -q -m "$DATA/manifest.tsv" --epochs "$EP" --eval-test --device cpu --threads "$T" \
	-o "$D/m.model" >"$D/fit.out" 2>"$D/fit.time" || { cat "$D/fit.out" "$D/fit.time"; echo "weno-fit failed"; exit 1; }
ws=$(awk -F'\t' 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next}
	c {s += $c; n++} END {if (n) printf "%.2f", s / n}' "$D/m.model.log.tsv")
[ -n "$ws" ] || { echo "no seconds column in $D/m.model.log.tsv"; exit 1; }
wm=$(rss_mb "$D/fit.time")
echo "weno-fit:  $ws s per epoch, peak RSS $wm MB"
awk -F'\t' 'NR == 1 {for (i = 1; i <= NF; i++) h[i] = $i; next}
	{printf "  epoch %s:", $1; for (i = 2; i <= NF; i++) if (h[i] ~ /loss|test_.*auc/) printf " %s %s", h[i], $i; print ""}' \
	"$D/m.model.log.tsv"

# ---- the PyTorch twin ----
tt= tm=
if ! $PY -c 'import torch' 2>/dev/null; then
	echo "SKIP: python3-torch not installed ($PY -c 'import torch' fails; apt-get install python3-torch)"
else
	$TIME -v $PY "$HERE/weno_torch.py" --threads "$T" --epochs "$EP" --max-bags "$MAXB" >"$D/torch.out" 2>"$D/torch.time" ||
		{ cat "$D/torch.out" "$D/torch.time"; echo "weno_torch.py failed"; exit 1; }
	tt=$(awk '$1 == "weno_torch" && $2 == "threads" {for (i = 2; i < NF; i++) if ($i == "seconds_per_epoch") print $(i + 1)}' "$D/torch.out")
	tm=$(rss_mb "$D/torch.time")
	echo "pytorch:   $tt s per epoch, peak RSS $tm MB (torch $($PY -c 'import torch; print(torch.__version__)' 2>/dev/null))"
	grep '^weno_torch epoch' "$D/torch.out" | sed 's/^weno_torch /  /'
fi
echo "load average after: $(load)"

# ---- ratios and targets ----
if [ -n "$tt" ]; then
	awk -v a="$ws" -v b="$tt" 'BEGIN {printf "ratio time weno-fit / pytorch: %.2f (weno-fit is %.2fx as fast: pytorch time / weno-fit time)\n", a / b, b / a}'
	awk -v a="$wm" -v b="$tm" 'BEGIN {printf "ratio peak RSS weno-fit / pytorch: %.2f\n", a / b}'
fi
ok=1
if awk -v a="$ws" 'BEGIN {exit !(a <= 120)}'; then r=met; else r="NOT met"; ok=0; fi
echo "target time <= 120 s per epoch: $r ($ws s)"
if awk -v m="$wm" 'BEGIN {exit !(m * 1048576 < 2e9)}'; then r=met; else r="NOT met"; ok=0; fi
echo "target peak RSS < 2 GB: $r ($wm MB)"
[ $ok = 1 ] && echo "targets: met" || echo "targets: NOT met"
exit 0
