#!/usr/bin/python3
"""fidelity-table.py - the learning curves of weno-fit and of the authors'
loop side by side (pipelines/fidelity.mk).

    fidelity-table.py --out PREFIX --config NAME=DIR [--config NAME=DIR ...]

DIR holds c-s<seed>.tsv (weno-fit's per-epoch logs) and py-s<seed>.tsv
(tests/golden/make_weno_golden.py curves).  Writes PREFIX.md and PREFIX.tsv:
per configuration and epoch, mean +- sd over the seeds of the four test AUCs
for both, and Welch's two-sample t-test of the difference (two-sided p; the
seeds of one side are independent of the other's); then the ABMIL teacher's
instance AUC seed by seed (does its attention rank positives above negatives
as often?).  p < 0.01 is marked.
"""
import argparse
import glob
import math
import os
import platform
import re
import subprocess
import sys

from scipy import stats

AUCS = [("test_student_inst_auc", "student instance"), ("test_student_bag_auc", "student bag"),
        ("test_teacher_inst_auc", "teacher instance"), ("test_teacher_bag_auc", "teacher bag")]


def read_log(path):
    rows = {}
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            c = dict(zip(head, line.rstrip("\n").split("\t")))
            rows[int(c["epoch"])] = {k: float(c[k]) if c[k] != "NA" else math.nan for k, _ in AUCS}
    return rows


def runs(d, prefix):
    out = {}
    for p in sorted(glob.glob(os.path.join(d, prefix + "-s*.tsv"))):
        seed = int(re.search(r"-s(\d+)\.tsv$", p).group(1))
        out[seed] = read_log(p)
    return out


def mean_sd(v):
    n = len(v)
    m = sum(v) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1)) if n > 1 else math.nan
    return m, sd


def welch(a, b):
    """t, degrees of freedom, two-sided p"""
    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    if va + vb == 0:
        return math.nan, math.nan, 1.0 if ma == mb else 0.0
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return t, df, 2 * stats.t.sf(abs(t), df)


def machine():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")][0]
    except (OSError, IndexError):
        pass
    return "%s, %d cores, %s" % (cpu, os.cpu_count() or 0, platform.platform())


def main():
    ap = argparse.ArgumentParser(description="weno-fit's learning curves beside the authors' loop")
    ap.add_argument("--out", required=True, help="writes OUT.md and OUT.tsv")
    ap.add_argument("--config", action="append", required=True, help="NAME=DIR")
    args = ap.parse_args()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    md = ["# weno-fit beside the authors' loop: learning curves", "",
          "Table commit %s; machine: %s." % (commit, machine()), "",
          "Per epoch: mean +- sd over the seeds of each test AUC, weno-fit (C) and the PyTorch "
          "transcription of the authors' loop (PY), and the two-sided p of Welch's t-test of "
          "C against PY; ** marks p < 0.01.", ""]
    tsv = ["config\tepoch\tauc\tc_mean\tc_sd\tc_n\tpy_mean\tpy_sd\tpy_n\twelch_t\twelch_df\tp"]
    for spec in args.config:
        name, d = spec.split("=", 1)
        c, py = runs(d, "c"), runs(d, "py")
        if not c or not py:
            sys.exit("fidelity-table.py: %s: no c-s*.tsv or py-s*.tsv" % d)
        epochs = sorted(set.intersection(*[set(r) for r in list(c.values()) + list(py.values())]))
        md += ["## %s: %d seeds of weno-fit (%s), %d of the authors' loop (%s)" %
               (name, len(c), " ".join(map(str, sorted(c))), len(py), " ".join(map(str, sorted(py)))), ""]
        md.append("| epoch | " + " | ".join("%s C | PY | p" % label for _, label in AUCS) + " |")
        md.append("|---|" + "---|---|---|" * len(AUCS))
        for e in epochs:
            cells = []
            for key, _ in AUCS:
                a = [r[e][key] for r in c.values()]
                b = [r[e][key] for r in py.values()]
                (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
                t, df, p = welch(a, b)
                cells.append("%.3f ± %.3f | %.3f ± %.3f | %.3g%s" % (ma, sa, mb, sb, p, " **" if p < 0.01 else ""))
                tsv.append("%s\t%d\t%s\t%.6f\t%.6f\t%d\t%.6f\t%.6f\t%d\t%.4f\t%.2f\t%.4g" %
                           (name, e, key, ma, sa, len(a), mb, sb, len(b), t, df, p))
            md.append("| %d | %s |" % (e, " | ".join(cells)))
        last = epochs[-1]
        md += ["", "The ABMIL teacher's test instance AUC seed by seed (epochs 1 to %d; below 0.5 its "
               "attention ranks the positives below the negatives):" % last, ""]
        for label, side in (("weno-fit", c), ("authors", py)):
            for s in sorted(side):
                md.append("- %s seed %d: %s" % (label, s, " ".join("%.2f" % side[s][e]["test_teacher_inst_auc"]
                                                                    for e in epochs)))
        below = {label: sum(side[s][last]["test_teacher_inst_auc"] < 0.5 for s in side)
                 for label, side in (("weno-fit", c), ("authors", py))}
        md += ["", "At epoch %d, below 0.5: weno-fit %d of %d seeds, the authors' loop %d of %d." %
               (last, below["weno-fit"], len(c), below["authors"], len(py)), ""]
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    with open(args.out + ".tsv", "w") as f:
        f.write("\n".join(tsv) + "\n")


if __name__ == "__main__":
    main()
