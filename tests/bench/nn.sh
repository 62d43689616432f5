#!/usr/bin/env bash
# tests/bench/nn.sh - bench_nn against its PyTorch twin on the same thread
# count; prints both throughputs and the ratio (target: >= 1.5x).
#
# Run it on an otherwise idle machine: both sides use libgomp with 2
# threads, and a busy core stalls every OpenMP barrier (a run next to
# another 100%-CPU process measured 2-3x slower, the active wait policy
# worst).  No OMP_* variable is set: libgomp's defaults (spin briefly, then
# sleep; no binding) apply to both sides alike.  The load average is
# printed so a noisy run can be told apart.
#
# A shared (virtual) machine drifts by 5-10 % within a minute, so the two
# sides run in turns: WENO_BENCH_ROUNDS rounds (default 3) of bench_nn then
# nn_torch.py, WENO_BENCH_STEPS steps each (default 10).  Every round's
# ratio is printed, then the median ratio per case.
set -u
BUILD=${BUILD:-build}
export WENO_THREADS=${WENO_THREADS:-2}
export WENO_BENCH_STEPS=${WENO_BENCH_STEPS:-10}
rounds=${WENO_BENCH_ROUNDS:-3}
torch=1
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	echo "SKIP nn_torch: /usr/bin/python3 has no torch"
	torch=0
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
all=""
for r in $(seq 1 "$rounds"); do
	c=$("$BUILD"/bench/bench_nn) || { echo "bench_nn failed"; exit 1; }
	echo "$c" | sed "s/^/round $r weno:  /"
	[ "$torch" = 1 ] || continue
	t=$(/usr/bin/python3 "$(dirname "$0")/nn_torch.py") || { echo "nn_torch.py failed"; exit 1; }
	echo "$t" | sed "s/^/round $r torch: /"
	for k in fmnist+student-batch256 fmnist+abmil-bag100; do
		a=$(echo "$c" | awk -v k="$k" '$2 == k {print $3}')
		b=$(echo "$t" | awk -v k="$k" '$2 == k {print $3}')
		all="$all$k $a $b"$'\n'
	done
done
[ "$torch" = 1 ] || exit 0
for k in fmnist+student-batch256 fmnist+abmil-bag100; do
	echo "$all" | awk -v k="$k" '$1 == k {n++; r[n] = $2 / $3; a[n] = $2; b[n] = $3}
		END {
			for (i = 1; i <= n; i++)
				for (j = i + 1; j <= n; j++)
					if (r[j] < r[i]) {t = r[i]; r[i] = r[j]; r[j] = t}
			s = ""
			for (i = 1; i <= n; i++)
				s = s sprintf("%s%.2f", i > 1 ? " " : "", r[i])
			med = n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
			printf "ratio %s: %.2fx median of %d rounds (%s)\n", k, med, n, s
		}'
done
