#!/usr/bin/python3
"""c16_froc.py - an independent transcription of the CAMELYON16 lesion-level
FROC evaluation, for checking froc-report (tests/cli/test_froc.sh).

Written from the challenge's rules as its published evaluation script
applies them (computationalpathologygroup/Camelyon16, Python/Evaluation_FROC.py;
the score as NCRF's copy, wsi/bin/Evaluation_FROC.py, computes it) and from
this project's documented annotation rules (lib/wsi/annot.h), not from the C
code: it works on whole images with numpy, scipy.ndimage and scikit-image,
where froc-report works on scanlines and cropped grids with its own exact
distance transform.  Run with Debian's /usr/bin/python3 (python3-numpy,
python3-scipy, python3-skimage).

  c16_froc.py --annotations DIR (--detections DIR | --scores TSV --patch N)
              [--mpp 0.243] [--level 5] [--tolerance 75] [--itc 275]
              [--score-col student_score] [--minmax] [--split test]
              [--rule patch|maxima] [--threshold 0.5] [--write-detections DIR]
              -o OUT.json

The tumour mask of a slide at level L (downsample D = 2^L) marks pixel
(row, col) when the level-0 point ((col + 0.5) D, (row + 0.5) D) lies inside a
tumour polygon (even-odd over the polygon's rings, crossings counted where
the point lies left of an edge's crossing) and inside no exclusion polygon.
The image spans from the origin to past the annotations' extent.
"""
import argparse
import json
import math
import os
import sys
import xml.etree.ElementTree as ET

import numpy as np
from scipy import ndimage
from skimage import measure

TUMOUR, EXCLUSION = 0, 1


def class_of(name):
    if name in ("_0", "_1") or name.lower() in ("tumor", "tumour"):
        return TUMOUR
    if name == "_2" or name.lower() in ("exclusion", "exclude"):
        return EXCLUSION
    return None


# ---- annotations: a list of (class, [(xs, ys), ...rings]) ----

def read_asap(path):
    polys = []
    root = ET.parse(path).getroot()
    for ann in root.iter("Annotation"):
        cls = class_of(ann.get("PartOfGroup", ""))
        typ = ann.get("Type")
        if cls is None or typ not in (None, "Polygon", "Spline", "Rectangle"):
            continue
        pts = []
        for k, c in enumerate(ann.iter("Coordinate")):
            order = float(c.get("Order")) if c.get("Order") is not None else float(k)
            pts.append((order, k, float(c.get("X")), float(c.get("Y"))))
        if len(pts) < 3:
            continue
        pts.sort()
        polys.append((cls, [([p[2] for p in pts], [p[3] for p in pts])]))
    return polys


def geojson_class(feature):
    props = feature.get("properties") or {}
    c = props.get("classification")
    if isinstance(c, dict) and isinstance(c.get("name"), str):
        return class_of(c["name"])
    if isinstance(c, str):
        return class_of(c)
    for key in ("name", "label"):
        if isinstance(props.get(key), str):
            return class_of(props[key])
    return TUMOUR


def geojson_polys(cls, geom, out):
    t = geom.get("type")
    if t == "GeometryCollection":
        for g in geom["geometries"]:
            geojson_polys(cls, g, out)
    elif t == "Polygon":
        out.append((cls, [([p[0] for p in ring], [p[1] for p in ring]) for ring in geom["coordinates"]]))
    elif t == "MultiPolygon":
        for poly in geom["coordinates"]:
            out.append((cls, [([p[0] for p in ring], [p[1] for p in ring]) for ring in poly]))


def read_geojson(path):
    with open(path) as f:
        doc = json.load(f)
    polys = []
    if isinstance(doc, list):
        feats = doc
    elif doc.get("type") == "FeatureCollection":
        feats = doc["features"]
    elif doc.get("type") == "Feature":
        feats = [doc]
    else:
        feats = [{"geometry": doc}]
    for f in feats:
        cls = geojson_class(f)
        if cls is None or not f.get("geometry"):
            continue
        geojson_polys(cls, f["geometry"], polys)
    return polys


def read_annotation(path):
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf").lstrip()
    return read_asap(path) if head.startswith(b"<") else read_geojson(path)


# ---- the evaluation mask ----

def polygon_inside(rings, cx, cy):
    """Even-odd over all rings: a centre toggles at every edge crossing its
    row to its right."""
    inside = np.zeros((len(cy), len(cx)), dtype=bool)
    for xs, ys in rings:
        n = len(xs)
        for i in range(n):
            j = i - 1 if i > 0 else n - 1
            xi, yi, xj, yj = xs[i], ys[i], xs[j], ys[j]
            rows = (yi <= cy) != (yj <= cy)
            if not rows.any():
                continue
            xc = xj + (cy[rows] - yj) * (xi - xj) / (yi - yj)
            inside[rows] ^= cx[None, :] < xc[:, None]
    return inside


def tumour_mask(polys, level, pad):
    ds = 2 ** level
    xmax = max((max(max(xs) for xs, _ in rings) for c, rings in polys if c == TUMOUR), default=None)
    if xmax is None or xmax < 0:
        return None
    ymax = max(max(max(ys) for _, ys in rings) for c, rings in polys if c == TUMOUR)
    w = int(math.floor(xmax / ds)) + pad
    h = int(math.floor(max(ymax, 0) / ds)) + pad
    cx = (np.arange(w) + 0.5) * ds
    cy = (np.arange(h) + 0.5) * ds
    tum = np.zeros((h, w), dtype=bool)
    exc = np.zeros((h, w), dtype=bool)
    for cls, rings in polys:
        (tum if cls == TUMOUR else exc)[...] |= polygon_inside(rings, cx, cy)
    return tum & ~exc


def lesions(polys, mpp, level, tolerance, itc_um):
    """The labelled evaluation mask and its lesions (label order)."""
    radius = tolerance / (mpp * pow(2, level) * 2)
    itc_px = itc_um / (mpp * pow(2, level))
    tum = tumour_mask(polys, level, int(math.ceil(radius)) + 8) if polys else None
    if tum is None or not tum.any():
        return None, []
    distance = ndimage.distance_transform_edt(~tum)
    filled = ndimage.binary_fill_holes(distance < radius)
    labels = measure.label(filled, connectivity=2)
    found = []
    flat = labels.ravel()
    for p in measure.regionprops(labels):
        first = int(np.argmax(flat == p.label))
        found.append({
            "label": int(p.label),
            "first": [first // labels.shape[1], first % labels.shape[1]],
            "area": int(p.area),
            "major_axis_px": float(p.major_axis_length),
            "itc": bool(p.major_axis_length < itc_px),
        })
    return labels, found


# ---- detections ----

def read_detection_csv(path):
    """The challenge's reader: confidence as float, X and Y as int."""
    probs, xs, ys = [], [], []
    with open(path) as f:
        for line in f.readlines():
            elems = line.rstrip().split(",")
            probs.append(float(elems[0]))
            xs.append(int(elems[1]))
            ys.append(int(elems[2]))
    return probs, xs, ys


def detections_from_scores(path, col, split, rule, thr, patch, minmax):
    with open(path) as f:
        lines = [l.rstrip("\n").rstrip("\r") for l in f if not l.startswith("#") and l.strip()]
    head = lines[0].split("\t")
    ix = {n: i for i, n in enumerate(head)}
    slides = {}
    for l in lines[1:]:
        v = l.split("\t")
        if split != "all" and "split" in ix and v[ix["split"]] != split:
            continue
        bag = v[ix["bag_id"]]
        slides.setdefault(bag, [])
        if v[ix.get("kind", 0)] != "instance" or v[ix["x"]] == "NA" or v[ix[col]] == "NA":
            continue
        slides[bag].append((int(v[ix["x"]]), int(v[ix["y"]]), float(v[ix[col]])))
    if minmax:
        allv = [s for p in slides.values() for _, _, s in p]
        lo, hi = min(allv), max(allv)
        for bag in slides:
            slides[bag] = [(x, y, (s - lo) / (hi - lo) if hi > lo else 0.5) for x, y, s in slides[bag]]
    half = patch // 2
    out = {}
    for bag, pts in slides.items():
        keep = [k for k, (_, _, s) in enumerate(pts) if s >= thr]
        if rule == "patch":
            out[bag] = [(pts[k][2], pts[k][0] + half, pts[k][1] + half) for k in keep]
            continue
        parent = {k: k for k in keep}

        def find(a):
            while parent[a] != a:
                a = parent[a]
            return a
        for a in keep:
            for b in keep:
                if b > a and abs(pts[a][0] - pts[b][0]) <= patch and abs(pts[a][1] - pts[b][1]) <= patch:
                    ra, rb = find(a), find(b)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
        peaks = {}
        for k in keep:
            r = find(k)
            if r not in peaks or pts[k][2] > pts[peaks[r]][2]:
                peaks[r] = k
        out[bag] = [(pts[k][2], pts[k][0] + half, pts[k][1] + half) for k in sorted(peaks.values())]
    return out


# ---- the challenge's counting ----

def fp_tp(probs, xs, ys, labels, itc, level):
    ds = 2 ** level
    n = int(labels.max()) if labels is not None else 0
    fp = []
    tp = np.zeros((n,), dtype=np.float32)
    hits = 0
    for p, x, y in zip(probs, xs, ys):
        r, c = y // ds, x // ds
        hit = 0
        if labels is not None and 0 <= r < labels.shape[0] and 0 <= c < labels.shape[1]:
            hit = int(labels[r, c])
        if hit == 0:
            fp.append(p)
        elif hit not in itc:
            hits += 1
            if p > tp[hit - 1]:
                tp[hit - 1] = p
    return fp, tp, n - len(itc), hits


def froc(fps_per_slide, tps_per_slide, lesion_counts):
    all_fp = [p for s in fps_per_slide for p in s]
    all_tp = [p for s in tps_per_slide for p in s]
    thresholds = sorted(set(all_fp + all_tp))
    fp_arr, tp_arr = np.asarray(all_fp), np.asarray(all_tp)
    nfp, ntp, thr = [], [], []
    for t in thresholds[1:]:
        thr.append(float(t))
        nfp.append((fp_arr >= t).sum())
        ntp.append((tp_arr >= t).sum())
    nfp.append(0)
    ntp.append(0)
    thr.append(None)
    fps = np.asarray(nfp) / float(len(fps_per_slide))
    sens = np.asarray(ntp) / float(sum(lesion_counts))
    targets = [0.25, 0.5, 1, 2, 4, 8]
    at = np.interp(targets, fps[::-1], sens[::-1])
    return thr, fps, sens, targets, at, float(np.mean(at))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--detections")
    ap.add_argument("--scores")
    ap.add_argument("--patch", type=int)
    ap.add_argument("--score-col", default="student_score")
    ap.add_argument("--minmax", action="store_true")
    ap.add_argument("--split", default="test")
    ap.add_argument("--rule", default="maxima", choices=["patch", "maxima"])
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--mpp", type=float, default=0.243)
    ap.add_argument("--level", type=int, default=5)
    ap.add_argument("--tolerance", type=float, default=75)
    ap.add_argument("--itc", type=float, default=275)
    ap.add_argument("--write-detections")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    if a.detections:
        dets = {}
        for name in sorted(os.listdir(a.detections)):
            if name.lower().endswith(".csv"):
                dets[name[:-4]] = read_detection_csv(os.path.join(a.detections, name))
    else:
        raw = detections_from_scores(a.scores, a.score_col, a.split, a.rule, a.threshold, a.patch, a.minmax)
        dets = {k: ([d[0] for d in v], [d[1] for d in v], [d[2] for d in v]) for k, v in raw.items()}
        if a.write_detections:
            os.makedirs(a.write_detections, exist_ok=True)
            for k, (p, x, y) in dets.items():
                with open(os.path.join(a.write_detections, k + ".csv"), "w") as f:
                    for i in range(len(p)):
                        f.write("%r,%d,%d\n" % (p[i], x[i], y[i]))
    annots = {}
    for name in os.listdir(a.annotations):
        stem, ext = os.path.splitext(name)
        if ext.lower() in (".xml", ".geojson", ".json"):
            annots[stem.lower()] = os.path.join(a.annotations, name)

    slides, fps, tps, counts = [], [], [], []
    for sid in sorted(dets):
        probs, xs, ys = dets[sid]
        path = annots.get(sid.lower())
        labels, les = (None, [])
        if path:
            labels, les = lesions(read_annotation(path), a.mpp, a.level, a.tolerance, a.itc)
        itc = {l["label"] for l in les if l["itc"]}
        fp, tp, n, hits = fp_tp(probs, xs, ys, labels, itc, a.level)
        fps.append(fp)
        tps.append(list(tp))
        counts.append(n)
        slides.append({"id": sid, "annotation": path is not None, "detections": len(probs),
                       "false_positives": len(fp), "hits": hits, "lesions": les,
                       "tp": [float(v) for v in tp]})
    report = {"slides": slides, "n_slides": len(slides), "n_lesions": int(sum(counts))}
    if sum(counts) > 0:
        thr, f, s, targets, at, score = froc(fps, tps, counts)
        report.update({
            "curve": {"threshold": thr, "fps": [float(v) for v in f], "sensitivity": [float(v) for v in s]},
            "sensitivity_at": [{"fps": t, "sensitivity": float(v)} for t, v in zip(targets, at)],
            "score": score,
        })
    with open(a.output, "w") as fo:
        json.dump(report, fo, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
