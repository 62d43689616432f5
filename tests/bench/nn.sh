#!/usr/bin/env bash
# tests/bench/nn.sh - bench_nn against its PyTorch twin on the same thread
# count; prints both throughputs and the ratio (target: >= 1.5x).
#
# Run it on an otherwise idle machine: both sides use libgomp with 2
# threads, and a busy core stalls every OpenMP barrier (a run next to
# another 100%-CPU process measured 2-3x slower, the active wait policy
# worst).  No OMP_* variable is set: libgomp's defaults (spin briefly, then
# sleep; no binding) apply to both sides alike.  The load average is
# printed so a noisy run can be told apart.  WENO_BENCH_STEPS (default 6)
# lengthens both runs when numbers jump between runs.
set -u
BUILD=${BUILD:-build}
export WENO_THREADS=${WENO_THREADS:-2}
c=$("$BUILD"/bench/bench_nn) || { echo "bench_nn failed"; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "$c" | sed 's/^/weno:  /'
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	echo "SKIP nn_torch: /usr/bin/python3 has no torch"
	exit 0
fi
t=$(/usr/bin/python3 "$(dirname "$0")/nn_torch.py") || { echo "nn_torch.py failed"; exit 1; }
echo "$t" | sed 's/^/torch: /'
for k in fmnist+student-batch256 fmnist+abmil-bag100; do
	a=$(echo "$c" | awk -v k="$k" '$2 == k {print $3}')
	b=$(echo "$t" | awk -v k="$k" '$2 == k {print $3}')
	awk -v k="$k" -v a="$a" -v b="$b" \
		'BEGIN {printf "ratio %s: %.2fx (weno %.0f / torch %.0f inst/s)\n", k, a / b, a, b}'
done
