#!/usr/bin/env bash
# tests/bench/run.sh - runs every benchmark: build/bench/bench_* and tests/bench/*.sh.
set -u
BUILD=${BUILD:-build}
export BUILD BIN=$(cd "$BUILD/bin" && pwd)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%F)"
st=0
for b in "$BUILD"/bench/bench_*; do
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	"$b" || st=1
done
for s in tests/bench/*.sh; do
	[ -f "$s" ] && [ "$(basename "$s")" != run.sh ] || continue
	echo "== $(basename "$s")"
	bash "$s" || st=1
done
# the WENO epoch on the GPU against the PyTorch twin there (SKIP without one)
echo "== weno_epoch.sh on the GPU"
WENO_BENCH_DEVICE=cuda WENO_BENCH_EPOCHS=3 bash tests/bench/weno_epoch.sh || st=1
exit $st
