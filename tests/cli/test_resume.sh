# test_resume.sh - tiling many slides with GNU Parallel as tools/README.md
# and the pipelines document it: a job killed mid-run (SIGKILL, as the
# out-of-memory killer does) must be redone by running the same command
# again.  --resume-failed does; plain --resume would skip it (checked
# here too, so that the documentation's warning stays true).
. "$(dirname "$0")/lib.sh"
if ! command -v parallel >/dev/null 2>&1; then
	echo "SKIP test_resume: GNU parallel is not installed"
	exit 0
fi
mkdir -p "$T/slides" "$T/tiles"
for i in 1 2 3; do
	"$BIN/slide-synth" -q -o "$T/slides/s$i.tif" --size 2048x1536 --seed $i 2>/dev/null
done
# the job for s2 kills itself the first time it runs, after wsi-tile
# has started writing (a KILL leaves no chance to clean up)
cat >"$T/tile.sh" <<SH
#!/bin/sh
"$BIN/wsi-tile" "\$1" --mpp 2 --size 64 --a_t 1 -o "$T/tiles/\$(basename "\$1" .tif).wbag" 2>/dev/null || exit 1
if [ "\$(basename "\$1")" = s2.tif ] && [ ! -e "$T/killed-once" ]; then
	touch "$T/killed-once"
	rm -f "$T/tiles/s2.wbag"
	kill -KILL \$\$
fi
SH
chmod +x "$T/tile.sh"
tile_all() { # parallel options...
	(cd "$T" && parallel --will-cite -j1 --joblog "$T/joblog" "$@" ./tile.sh {} ::: slides/s1.tif slides/s2.tif slides/s3.tif) >/dev/null 2>&1
}
tile_all --resume-failed
: >"$T/err"; : >"$T/out"
ok "first run: the killed job is in the joblog with its signal, its slide missing" '[ -s "$T/tiles/s1.wbag" ] && [ -s "$T/tiles/s3.wbag" ] && [ ! -e "$T/tiles/s2.wbag" ] && awk -F"\t" "NR > 1 && \$8 == 9" "$T/joblog" | grep -q s2.tif'
cp "$T/joblog" "$T/joblog.first"
tile_all --resume
ok "plain --resume skips the killed job (the pitfall the docs warn of)" '[ ! -e "$T/tiles/s2.wbag" ]'
cp "$T/joblog.first" "$T/joblog"
before=$(stat -c %Y "$T/tiles/s1.wbag")
tile_all --resume-failed
ok "--resume-failed redoes the killed job and only it" '[ -s "$T/tiles/s2.wbag" ] && "$BIN/bag-info" --check "$T/tiles/s2.wbag" >/dev/null && [ "$(stat -c %Y "$T/tiles/s1.wbag")" = "$before" ]'
rm -rf "$T"
