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
