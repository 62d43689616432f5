#!/usr/bin/env bash
# pipelines/c16-tile-one.sh BIN OUTDIR ID LABEL SLIDE XML [WSI-TILE OPTIONS...]
# One GNU Parallel job: tiles one slide and finalises the stream into the bag
# OUTDIR/ID.wbag with its id and label (wsi-tile | bag-pack), with the
# tumour fraction of each patch from XML (an empty XML labels every patch 0;
# "-" leaves the labels unknown).  Its stderr is kept in OUTDIR/logs/ID.err,
# its summary in OUTDIR/logs/ID.json.  A bag already there is kept (the folder
# is keyed on the tiling parameters).  Both writers are atomic, so a failed
# job leaves no bag.  With FEATURES=DIR in the environment it imports
# DIR/<slide name>.h5 (CLAM/TRIDENT features) instead of tiling.
set -uo pipefail
bin=$1 out=$2 id=$3 label=$4 slide=$5 xml=$6
shift 6
mkdir -p "$out/logs"
[ -s "$out/$id.wbag" ] && exit 0
err="$out/logs/$id.err"
if [ -n "${FEATURES:-}" ]; then
	name=$(basename "$slide"); name=${name%.*}
	h5=$FEATURES/$name.h5
	[ -f "$h5" ] || h5=$FEATURES/$id.h5
	"$bin/bag-pack" -q --h5 "$h5" --id "$id" --label "$label" --source "$slide" -o "$out/$id.wbag" 2>"$err"
	exit
fi
ann=()
[ "$xml" != - ] && ann=(-a "$xml")
{ "$bin/wsi-tile" "$slide" "$@" "${ann[@]}" --id "$id" -q --summary "$out/logs/$id.json" -o - |
	"$bin/bag-pack" -q --id "$id" --label "$label" -o "$out/$id.wbag"; } 2>"$err"
