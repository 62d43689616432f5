#!/usr/bin/env bash
# pipelines/c16-failures.sh JOBLOG OUTDIR JOBS > failed.tsv
# The slides of JOBS (the job list, id first) whose last job in GNU Parallel's
# joblog failed, with the reason:
# TSV id, exit status (or signal), the first error line of OUTDIR/logs/<id>.err.
# The job command is "... c16-tile-one.sh BIN OUTDIR ID ...": the id is the
# third word after the script.
set -euo pipefail
log=$1 out=$2 jobs=$3
[ -f "$log" ] || exit 0
awk -F'\t' 'FILENAME == ARGV[1] { want[$1] = 1; next }
FNR > 1 {
	n = split($9, w, " ")
	for (i = 1; i <= n; i++) if (w[i] ~ /c16-tile-one\.sh$/) { id = w[i + 3]; break }
	gsub(/\x27/, "", id)
	st[id] = $7; sig[id] = $8
	if (!(id in order)) order[id] = ++k
}
END { for (id in st) if ((id in want) && (st[id] != 0 || sig[id] != 0)) print order[id] "\t" id "\t" st[id] "\t" sig[id] }' "$jobs" "$log" |
	sort -n | while IFS=$'\t' read -r _ id st sig; do
		# the first error line (wsi-tile's comes before bag-pack's "truncated stream")
		reason=$(grep -v -e '^wsi-tile	' -e ': warning: ' "$out/logs/$id.err" 2>/dev/null | grep . | head -1)
		[ -n "$reason" ] || reason="no message"
		[ "$sig" != 0 ] && st="signal $sig"
		printf '%s\t%s\t%s\n' "$id" "$st" "$reason"
	done
