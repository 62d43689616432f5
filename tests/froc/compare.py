#!/usr/bin/python3
"""compare.py C.json PY.json [TOL] - checks froc-report's JSON report against
c16_froc.py's: the same slides, lesions (first pixel, area, ITC, major axis),
counts of detections, false positives and hits, the same curve, sensitivities
and score to TOL (default 1e-9).  Prints what differs and exits 1, or prints
one summary line and exits 0."""
import json
import sys


def main():
    c = json.load(open(sys.argv[1]))
    p = json.load(open(sys.argv[2]))
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-9
    bad = []

    def close(a, b, what):
        if a is None or b is None:
            if a is not b:
                bad.append("%s: %r vs %r" % (what, a, b))
        elif abs(a - b) > tol * max(1.0, abs(b)):
            bad.append("%s: %.17g vs %.17g" % (what, a, b))

    cs, ps = c["slides"], p["slides"]
    if [s["id"] for s in cs] != [s["id"] for s in ps]:
        bad.append("slides: %s vs %s" % ([s["id"] for s in cs], [s["id"] for s in ps]))
    nles = 0
    for a, b in zip(cs, ps):
        sid = a["id"]
        for k in ("detections", "false_positives", "hits"):
            if a[k] != b[k]:
                bad.append("%s: %s %d vs %d" % (sid, k, a[k], b[k]))
        la, lb = a["lesions"], b["lesions"]
        if len(la) != len(lb):
            bad.append("%s: %d lesions vs %d" % (sid, len(la), len(lb)))
            continue
        for x, y in zip(la, lb):
            nles += 1
            if x["first"] != y["first"] or x["area"] != y["area"] or x["itc"] != y["itc"]:
                bad.append("%s: lesion %d: first %s area %d itc %s vs first %s area %d itc %s" %
                           (sid, x["label"], x["first"], x["area"], x["itc"], y["first"], y["area"], y["itc"]))
            close(x["major_axis_px"], y["major_axis_px"], "%s: lesion %d major axis" % (sid, x["label"]))
            hit = b["tp"][x["label"] - 1] if not y["itc"] else 0.0
            close(x["hit"] or 0.0, hit, "%s: lesion %d hit" % (sid, x["label"]))
    if c["n_lesions"] != p["n_lesions"]:
        bad.append("lesions to detect: %d vs %d" % (c["n_lesions"], p["n_lesions"]))
    if "score" in p:
        fa, fb = c["curve"], p["curve"]
        for k in ("fps", "sensitivity"):
            if len(fa[k]) != len(fb[k]):
                bad.append("curve %s: %d points vs %d" % (k, len(fa[k]), len(fb[k])))
            else:
                for i, (x, y) in enumerate(zip(fa[k], fb[k])):
                    close(x, y, "curve %s[%d]" % (k, i))
        for x, y in zip(c["sensitivity_at"], p["sensitivity_at"]):
            close(x["sensitivity"], y["sensitivity"], "sensitivity at %g" % y["fps"])
        close(c["score"], p["score"], "score")
    for b in bad[:20]:
        print("  " + b)
    if bad:
        print("%d differences" % len(bad))
        return 1
    print("agree to %g: %d slides, %d lesions, %d curve points, score %s" %
          (tol, len(cs), nles, len(c["curve"]["fps"]) if "curve" in c else 0, p.get("score")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
