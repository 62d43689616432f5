# test_probe.sh - the probe suite (tests/probe/probe.sh) at the scale CI
# affords: a few cases of every class of hostile input and condition.
# make probe runs many more.
BUILD=$(cd "${BIN:-build/bin}/.." && pwd)
if [ ! -x "$BUILD/tests/probe_mkevil" ]; then
	echo "SKIP test_probe: $BUILD/tests/probe_mkevil is not built (make test builds it)"
	exit 0
fi
PROBE_SCALE=quick BUILD=$BUILD bash "$(dirname "$0")/../probe/probe.sh"
