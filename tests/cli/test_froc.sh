# CLI test of froc-report, checked against tests/froc/c16_froc.py, an
# independent transcription of the CAMELYON16 evaluation in numpy, scipy and
# scikit-image: the same lesions, curve, sensitivities and score to 1e-9 on
# hand-made annotations (ITCs, lesions that touch, `_2` exclusions, GeoJSON
# holes, a lesion on the slide's edge, slides without tumour, detections in
# the 75 um margin) and on slides made by slide-synth; detections from the
# challenge's CSV files and from a scores table by both rules.  Also the
# outputs, the errors and their exit codes.
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
FROC="$BIN/froc-report"

run "$FROC" --help
ok "--help: usage on stdout, exit 0" '[ $status = 0 ] && has_out "^usage: froc-report" && has_out "rule"'
run "$FROC" --version
ok "--version" '[ $status = 0 ] && [ -s "$T/out" ]'

# usage errors: exit 2
run "$FROC" -a "$T"
ok "no input: exit 2" '[ $status = 2 ] && has_err "give either --scores TSV or --detections DIR"'
run "$FROC" -d "$T"
ok "no annotations: exit 2" '[ $status = 2 ] && has_err "annotations"'
run "$FROC" --scores x.tsv -a "$T"
ok "scores without a patch side: exit 2" '[ $status = 2 ] && has_err "--patch"'
run "$FROC" -d "$T" -a "$T" --level 40
ok "bad level: exit 2" '[ $status = 2 ] && has_err "level 40"'
run "$FROC" -d "$T" -a "$T" --rule nearest
ok "bad rule: exit 2" '[ $status = 2 ]'

if ! $PY -c 'import numpy, scipy.ndimage, skimage.measure' 2>/dev/null; then
	echo "SKIP froc transcription: /usr/bin/python3 lacks numpy, scipy or scikit-image (make deps installs python3-numpy python3-scipy python3-skimage)"
	rm -rf "$T"
	exit 0
fi

C="$T/cases"
$PY "$REPO/tests/froc/make_cases.py" "$C" 7
compare() { # name C.json PY.json
	if $PY "$REPO/tests/froc/compare.py" "$2" "$3" >"$T/cmp" 2>&1; then
		echo "PASS $1: $(cat "$T/cmp")"
	else
		echo "FAIL $1:"
		sed 's/^/    /' "$T/cmp" | head -12
	fi
}

# hand-made cases, the challenge's CSV files
run "$FROC" -d "$C/det" -a "$C/ann" -b 200 --json-out "$T/c.json" --tsv "$T/curve.tsv" --svg "$T/curve.svg" \
	--lesions "$T/lesions.tsv"
ok "CSV detections: exit 0, the table" '[ $status = 0 ] && has_out "^FROC score " && has_out "^0.25 " && has_out "9 slides (7 with annotations)"'
$PY "$REPO/tests/froc/c16_froc.py" --annotations "$C/ann" --detections "$C/det" -o "$T/p.json"
compare "hand-made cases agree with the transcription" "$T/c.json" "$T/p.json"
ok "ITC: the 100 um lesion is one, the 180 um one (275.2 um dilated) is not" \
	'awk -F"\t" "\$1 == \"t_itc\" && \$2 == 2 && \$8 == 1" "$T/lesions.tsv" | grep -q . && awk -F"\t" "\$1 == \"t_itc\" && \$2 == 3 && \$8 == 0 && \$7 > 275 && \$7 < 280" "$T/lesions.tsv" | grep -q .'
ok "touching lesions (50 um apart) are one, 200 um apart two" '[ $(grep -c "^t_touch	" "$T/lesions.tsv") = 3 ]'
ok "an enclosed _2 is filled, a _2 band splits a lesion in two" '[ $(grep -c "^t_excl	" "$T/lesions.tsv") = 3 ]'
ok "GeoJSON: hole filled, MultiPolygon two lesions, Other ignored" '[ $(grep -c "^t_geo	" "$T/lesions.tsv") = 3 ]'
ok "no tumour: no lesions" '! grep -q "^t_empty	" "$T/lesions.tsv"'
ok "the 75 um margin: 20 um outside hits, 60 um outside does not" \
	'awk -F"\t" "\$1 == \"t_margin\" && \$11 == \"0.81\"" "$T/lesions.tsv" | grep -q . && $PY -c "
import json, sys
s = [x for x in json.load(open(\"$T/c.json\"))[\"slides\"] if x[\"id\"] == \"t_margin\"][0]
sys.exit(0 if s[\"hits\"] == 1 and s[\"false_positives\"] == 1 else 1)"'
ok "curve TSV, SVG, JSON written" '[ "$(head -1 "$T/curve.tsv")" = "threshold	fps_per_slide	sensitivity" ] && tail -1 "$T/curve.tsv" | grep -q "^inf	0	0$" && grep -q "<polyline" "$T/curve.svg" && $PY -m json.tool "$T/c.json" >/dev/null'
ok "bootstrap interval around the score" '$PY -c "
import json, sys
r = json.load(open(\"$T/c.json\"))
lo, hi = r[\"score_ci\"]
sys.exit(0 if lo <= r[\"score\"] <= hi and r[\"bootstrap\"] == 200 else 1)"'
run "$FROC" -d "$C/det" -a "$C/ann" -b 200 -j
ok "--json on stdout equals --json-out" 'cmp -s "$T/out" "$T/c.json"'
run "$FROC" -d "$C/det" -a "$C/ann" -b 0 --exclude n_001,n_002 -j
ok "--exclude leaves slides out" '[ $status = 0 ] && $PY -c "
import json, sys
sys.exit(0 if json.load(open(\"$T/out\"))[\"n_slides\"] == 7 else 1)"'

# other evaluation parameters: level 4, 0.5 um/px, the tolerance and ITC cut changed
run "$FROC" -d "$C/det" -a "$C/ann" -b 0 --level 4 --mpp 0.5 --tolerance 100 --itc 300 --json-out "$T/c2.json"
$PY "$REPO/tests/froc/c16_froc.py" --annotations "$C/ann" --detections "$C/det" --level 4 --mpp 0.5 --tolerance 100 \
	--itc 300 -o "$T/p2.json"
compare "level 4, 0.5 um/px, 100 um, 300 um agree" "$T/c2.json" "$T/p2.json"

# detections from a scores table, both rules, student and teacher
for args in "--rule maxima" "--rule patch" "--rule maxima --threshold 0.3" "--rule patch --score teacher"; do
	pyargs=${args/--score teacher/--score-col teacher_score --minmax}
	run "$FROC" --scores "$C/scores.tsv" --patch 512 -a "$C/ann" -b 0 $args --json-out "$T/cs.json" \
		--detections-out "$T/dets"
	$PY "$REPO/tests/froc/c16_froc.py" --annotations "$C/ann" --scores "$C/scores.tsv" --patch 512 $pyargs -o "$T/ps.json"
	compare "scores, $args: agree" "$T/cs.json" "$T/ps.json"
	$PY "$REPO/tests/froc/c16_froc.py" --annotations "$C/ann" --detections "$T/dets" -o "$T/pd.json"
	compare "scores, $args: its detection CSV files evaluate the same" "$T/cs.json" "$T/pd.json"
	rm -rf "$T/dets"
done
ok "val rows left out of the test split" '! has_out "v_001" && ! grep -q "v_001" "$T/cs.json"'
ok "teacher NA rows: a warning" 'has_err "warning: .*teacher_score NA left out"'

# slides made by slide-synth (its ASAP XML), at 1 and 2 um/px
S="$T/synth"
mkdir -p "$S/ann" "$S/det"
i=0
for spec in "3 11" "1 12" "4 13" "2 14" "0 15"; do
	set -- $spec
	i=$((i + 1))
	"$BIN/slide-synth" -q -o "$S/s.tif" --xml "$S/ann/s_$i.xml" --size 2048x1536 --tumours "$1" --seed "$2" --tile 512
done
rm -f "$S/s.tif"
$PY - "$S" <<'PY'
import random, sys, os, xml.etree.ElementTree as ET
d = sys.argv[1]
rnd = random.Random(4)
for name in sorted(os.listdir(d + "/ann")):
    pts = [(float(c.get("X")), float(c.get("Y"))) for c in ET.parse(d + "/ann/" + name).getroot().iter("Coordinate")]
    with open(d + "/det/" + name[:-4] + ".csv", "w") as f:
        for k in range(40):
            if pts and k % 2:
                x, y = rnd.choice(pts)
                x, y = x + rnd.uniform(-150, 150), y + rnd.uniform(-150, 150)
            else:
                x, y = rnd.uniform(0, 2048), rnd.uniform(0, 1536)
            f.write("%r,%d,%d\n" % (round(rnd.random(), 3), int(x), int(y)))
PY
for mpp in 1 2; do
	run "$FROC" -d "$S/det" -a "$S/ann" -b 0 --mpp $mpp --json-out "$T/cs.json"
	if [ $status = 0 ]; then
		$PY "$REPO/tests/froc/c16_froc.py" --annotations "$S/ann" --detections "$S/det" --mpp $mpp -o "$T/ps.json"
		compare "slide-synth slides at $mpp um/px agree" "$T/cs.json" "$T/ps.json"
	else
		ok "slide-synth slides at $mpp um/px" false
	fi
done

# at the synthetic slides' own 0.25 um/px every lesion is an ITC
run "$FROC" -d "$S/det" -a "$S/ann" -b 0 --mpp 0.25
ok "only ITCs: exit 1, the sensitivity is undefined" '[ $status = 1 ] && has_err "no lesion to detect"'

# runtime errors: exit 1, file and line named
mkdir -p "$T/bad"
printf '0.9,10,20\n0.5,30\n' >"$T/bad/x_001.csv"
run "$FROC" -d "$T/bad" -a "$C/ann"
ok "a short CSV line: exit 1, file and line" '[ $status = 1 ] && has_err "^froc-report: .*x_001.csv: line 2: 2 fields"'
run "$FROC" -d "$T/nope" -a "$C/ann"
ok "no such folder: exit 1" '[ $status = 1 ] && has_err "cannot open the folder"'
printf 'kind\tbag_id\tlabel\tstudent_score\nbag\ts\t1\t0.5\n' >"$T/noxy.tsv"
run "$FROC" --scores "$T/noxy.tsv" --patch 512 -a "$C/ann"
ok "a table without x, y: exit 1" '[ $status = 1 ] && has_err "no column .x."'
run "$FROC" --scores "$C/scores.tsv" --bags "$T/nobags" -a "$C/ann"
ok "missing bag for the patch side: exit 1" '[ $status = 1 ] && has_err "nobags/.*wbag"'
run "$FROC" -d "$C/det" -a "$C/ann" --tsv "$T/nodir/curve.tsv"
ok "unwritable output: exit 1" '[ $status = 1 ] && has_err "nodir"'
if [ -w /dev/full ]; then
	run sh -c "'$FROC' -d '$C/det' -a '$C/ann' -b 0 >/dev/full"
	ok "a failed write to stdout: exit 1" '[ $status = 1 ] && has_err "standard output"'
fi
rm -rf "$T"
