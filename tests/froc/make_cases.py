#!/usr/bin/python3
"""make_cases.py OUT SEED - hand-made tumour annotations and detections for
tests/cli/test_froc.sh, level-0 pixels at the challenge's 0.243 um/px:

  OUT/ann/t_itc.xml      a 1 mm lesion, a 100 um one (an ITC once dilated),
                         a 180 um one (just above the 275 um cut once dilated)
  OUT/ann/t_touch.xml    two 300 um lesions 50 um apart (one lesion), two
                         200 um apart (two)
  OUT/ann/t_excl.xml     a lesion around an enclosed `_2` (filled back), and a
                         band of `_2` across another (two lesions)
  OUT/ann/t_geo.geojson  a polygon with a hole, a MultiPolygon, a `_2` cutting
                         a corner, an "Other" feature (ignored)
  OUT/ann/t_margin.xml   one lesion; detections 20 um and 60 um outside it
  OUT/ann/t_edge.xml     a lesion touching the slide's left edge
  OUT/ann/t_empty.xml    no tumour (another group only)
  OUT/det/<slide>.csv    detections for those and for n_001, n_002 (no
                         annotation): points on and around every lesion,
                         repeated hits, random points, confidences with two
                         decimals (ties, float32 rounding), zeros, a negative
  OUT/scores.tsv         a weno-score-shaped table of 512-px patches around
                         the lesions of the annotated slides (test) and a
                         val slide, student and teacher scores
"""
import json
import os
import random
import sys

UM = 1 / 0.243  # level-0 px per um


def sq(x, y, w, h=None):
    h = w if h is None else h
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def asap(path, polys):
    with open(path, "w") as f:
        f.write('<?xml version="1.0"?>\n<ASAP_Annotations>\n\t<Annotations>\n')
        for i, (group, pts) in enumerate(polys):
            f.write('\t\t<Annotation Name="A%d" Type="Polygon" PartOfGroup="%s" Color="#F4FA58">\n'
                    '\t\t\t<Coordinates>\n' % (i, group))
            for k, (x, y) in enumerate(pts):
                f.write('\t\t\t\t<Coordinate Order="%d" X="%.4f" Y="%.4f" />\n' % (k, x, y))
            f.write('\t\t\t</Coordinates>\n\t\t</Annotation>\n')
        f.write('\t</Annotations>\n\t<AnnotationGroups/>\n</ASAP_Annotations>\n')


def main():
    out, seed = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(seed)
    os.makedirs(out + "/ann", exist_ok=True)
    os.makedirs(out + "/det", exist_ok=True)
    r4 = lambda v: round(v * 16) / 16  # exact in 4 decimals
    cases = {
        "t_itc": [("_0", sq(4000, 4000, 1000 * UM)), ("Tumor", sq(20000, 5000, r4(100 * UM))),
                  ("_1", sq(20000, 12000, r4(180 * UM)))],
        "t_touch": [("_0", sq(3000, 3000, r4(300 * UM))), ("_0", sq(3000 + r4(350 * UM), 3000, r4(300 * UM))),
                    ("Tumor", sq(12000, 3000, r4(300 * UM))), ("Tumor", sq(12000 + r4(500 * UM), 3000, r4(300 * UM)))],
        "t_excl": [("_0", sq(4000, 4000, r4(1500 * UM))), ("_2", sq(4000 + r4(500 * UM), 4000 + r4(500 * UM), r4(500 * UM))),
                   ("_0", sq(15000, 4000, r4(2000 * UM), r4(500 * UM))),
                   ("_2", sq(15000 + r4(850 * UM), 3000, r4(300 * UM), r4(900 * UM) + 1000))],
        "t_margin": [("_0", sq(10000, 10000, 4115))],
        "t_edge": [("_0", [(-500, 3000), (2000, 3000), (2000, 5000), (-500, 5000)])],
        "t_empty": [("Other", sq(1000, 1000, 5000))],
    }
    for name, polys in cases.items():
        asap("%s/ann/%s.xml" % (out, name), polys)
    geo = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"classification": {"name": "Tumor", "color": [200, 0, 0]}},
         "geometry": {"type": "Polygon", "coordinates": [
             [list(p) for p in sq(3000, 3000, r4(1500 * UM))] + [[3000, 3000]],
             [list(p) for p in sq(3000 + r4(450 * UM), 3000 + r4(450 * UM), r4(600 * UM))]]}},
        {"type": "Feature", "properties": {"name": "_0"},
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[list(p) for p in sq(14000, 3000, r4(400 * UM))]],
             [[list(p) for p in sq(14000 + r4(1400 * UM), 3000, r4(400 * UM))]]]}},
        {"type": "Feature", "properties": {"classification": "_2"},
         "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in sq(2500, 2500, 1500)]]}},
        {"type": "Feature", "properties": {"classification": {"name": "Other"}},
         "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in sq(20000, 20000, 3000)]]}},
    ]}
    with open(out + "/ann/t_geo.geojson", "w") as f:
        json.dump(geo, f)
    tumour_boxes = {name: [p for g, p in polys if g in ("_0", "_1", "Tumor")] for name, polys in cases.items()}
    tumour_boxes["t_geo"] = [sq(3000, 3000, 1500 * UM), sq(14000, 3000, 400 * UM), sq(14000 + 1400 * UM, 3000, 400 * UM)]
    tumour_boxes["n_001"] = []
    tumour_boxes["n_002"] = []
    conf = lambda: rnd.choice([0.0, 0.05, 0.1, 0.3, 0.5, 0.55, 0.7, 0.7, 0.9, 0.95, 0.99, 1.0,
                               round(rnd.random(), 2), round(rnd.random(), 6)])
    for name, boxes in sorted(tumour_boxes.items()):
        rows = []
        if name == "t_margin":  # only two, 20 um and 60 um left of the lesion's edge
            boxes = []
            rows.append((0.81, 10000 - int(20 * UM), 12000))
            rows.append((0.82, 10000 - int(60 * UM), 12000))
        for pts in boxes:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            for _ in range(4):  # on and around the lesion (the margin included)
                rows.append((conf(), int(rnd.uniform(x0 - 300, x1 + 300)), int(rnd.uniform(y0 - 300, y1 + 300))))
            cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
            rows.append((conf(), cx, cy))  # repeated hits on one lesion
            rows.append((conf(), cx + 10, cy + 10))
        for _ in range(12 if name != "t_margin" else 0):
            rows.append((conf(), rnd.randrange(0, 30000), rnd.randrange(0, 30000)))
        if name == "t_edge":
            rows.append((0.6, -40, 4000))  # outside the slide: a false positive
        if name == "n_002":
            rows.append((-0.5, 100, 100))  # a negative confidence
        with open("%s/det/%s.csv" % (out, name), "w") as f:
            for c, x, y in rows:
                f.write("%r,%d,%d\n" % (c, x, y))
    # scores: 512-px patches over a window around each annotated slide's
    # lesions; the student's probability rises near tumour, the teacher's
    # attention logit is a noisy affine copy
    with open(out + "/scores.tsv", "w") as f:
        f.write("# made by tests/froc/make_cases.py\n")
        f.write("kind\tsplit\tbag_id\tindex\tx\ty\tlabel\tstudent_score\tteacher_score\n")
        for name, boxes in sorted(tumour_boxes.items()) + [("v_001", [sq(5000, 5000, 3000)])]:
            split = "val" if name.startswith("v_") else "test"
            f.write("bag\t%s\t%s\tNA\tNA\tNA\t%d\t%.9g\t%.9g\n" % (split, name, 1 if boxes else 0, rnd.random(),
                                                                  rnd.random()))
            idx = 0
            for gy in range(0, 26000, 512):
                for gx in range(0, 26000, 512):
                    near = any(min(p[0] for p in b) - 1500 < gx < max(p[0] for p in b) + 1000 and
                               min(p[1] for p in b) - 1500 < gy < max(p[1] for p in b) + 1000 for b in boxes)
                    if not near and rnd.random() > 0.02:
                        continue
                    s = min(1.0, max(0.0, (0.6 if near else 0.1) + rnd.gauss(0, 0.25)))
                    t = "NA" if rnd.random() < 0.03 else "%.9g" % (3 * s - 1 + rnd.gauss(0, 0.3))
                    f.write("instance\t%s\t%s\t%d\t%d\t%d\tNA\t%.9g\t%s\n" % (split, name, idx, gx, gy, s, t))
                    idx += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
