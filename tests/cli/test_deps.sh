#!/usr/bin/env bash
# test_deps.sh - `make deps` decides how to install the Debian packages:
# apt-get as root, through sudo for a user who has it, otherwise the exact
# command and a non-zero status; and nothing at all when nothing is missing.
# Fake id, sudo, apt-get and dpkg-query on a PATH that holds nothing else,
# so nothing is installed and no real sudo can be found.
. "$(dirname "$0")/lib.sh"
MAKE_BIN=$(command -v make)
TOP=$(pwd)

# fake_bin DIR UID WITH_SUDO INSTALLED: DIR/log records each call
fake_bin() {
	local d=$1
	mkdir -p "$d"
	: >"$d/log"
	printf '#!/bin/sh\n[ "$1" = -u ] && echo %s || echo "uid=%s"\n' "$2" "$2" >"$d/id"
	printf '#!/bin/sh\necho "apt-get $*" >>%s/log\n' "$d" >"$d/apt-get"
	if [ "$4" = yes ]; then
		printf '#!/bin/sh\nprintf "install ok installed"\n' >"$d/dpkg-query"
	else
		printf '#!/bin/sh\nexit 1\n' >"$d/dpkg-query"
	fi
	[ "$3" = yes ] && printf '#!/bin/sh\necho "sudo $*" >>%s/log\n' "$d" >"$d/sudo"
	chmod +x "$d"/id "$d"/apt-get "$d"/dpkg-query
	[ ! -f "$d/sudo" ] || chmod +x "$d/sudo"
}

deps() { # DIR: make deps with only DIR on PATH
	run env -i PATH="$1" HOME="$T" "$MAKE_BIN" --no-print-directory -C "$TOP" deps
}

fake_bin "$T/root" 0 no no
deps "$T/root"
ok "deps as root runs apt-get itself" '[ $status = 0 ] && grep -q "^apt-get update" $T/root/log &&
	grep -q "^apt-get install -y -qq build-essential .*libopenblas-dev" $T/root/log && ! grep -q sudo $T/root/log'

fake_bin "$T/user" 1000 yes no
deps "$T/user"
ok "deps as a user with sudo goes through sudo" '[ $status = 0 ] && grep -q "^sudo env DEBIAN_FRONTEND=noninteractive apt-get update" $T/user/log &&
	grep -q "^sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential" $T/user/log &&
	! grep -q "^apt-get" $T/user/log'

fake_bin "$T/nosudo" 1000 no no
deps "$T/nosudo"
ok "deps as a user without sudo prints the command and fails" '[ $status != 0 ] && [ ! -s $T/nosudo/log ] &&
	has_err "not root and no sudo" && has_err "apt-get update && apt-get install -y build-essential pkg-config"'

fake_bin "$T/done" 1000 no yes
deps "$T/done"
ok "deps with every package installed does nothing, even without sudo" '[ $status = 0 ] && [ ! -s $T/done/log ] &&
	has_out "packages are installed"'

# `make deps GOAL`: deps first, then GOAL in a new make (which reads the
# library flags again); -n shows the order without running anything
run "$MAKE_BIN" --no-print-directory -n -C "$TOP" deps build-info
ok "make deps GOAL runs deps, then GOAL in a new make" '[ $status = 0 ] &&
	[ "$(grep -n "dpkg-query" $T/out | cut -d: -f1)" -lt "$(grep -n "make.* build-info" $T/out | cut -d: -f1)" ]'

rm -rf "$T"
