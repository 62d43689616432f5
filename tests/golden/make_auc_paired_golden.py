#!/usr/bin/python3
"""Golden values for metrics_auc_paired (lib/mil/metrics.c): two correlated
scores of the same cases, their AUCs from scikit-learn's roc_auc_score and
DeLong's test of the difference by its O(n1*n0) definition (structural
components from pairwise comparisons, covariances with n-1).  Seeded cases
with many ties, some nearly equal scores, some very different.
Run once with Debian's python3-sklearn:
    /usr/bin/python3 tests/golden/make_auc_paired_golden.py
Writes tests/golden/auc_paired_cases.tsv and tests/golden/auc_paired_expected.tsv."""
import math
import random
from sklearn.metrics import roc_auc_score


def components(pos, neg):
    psi = lambda x, y: 1.0 if x > y else (0.5 if x == y else 0.0)
    v10 = [sum(psi(x, y) for y in neg) / len(neg) for x in pos]
    v01 = [sum(psi(x, y) for x in pos) / len(pos) for y in neg]
    return v10, v01


def cov(u, v):
    mu, mv = sum(u) / len(u), sum(v) / len(v)
    return sum((a - mu) * (b - mv) for a, b in zip(u, v)) / (len(u) - 1)


rng = random.Random(20221129)
cases, expected = [], []
for k in range(24):
    n = rng.choice([6, 15, 60, 250])
    levels = rng.choice([3, 10, 1000000])
    sep_a, sep_b = rng.choice([0.0, 0.5, 2.0]), rng.choice([0.0, 0.5, 2.0])
    corr = rng.choice([0.0, 0.6, 0.99])
    while True:
        rows = []
        for _ in range(n):
            y = 1 if rng.random() < 0.4 else 0
            z = rng.gauss(0, 1)
            a = sep_a * y + z
            b = sep_b * y + corr * z + math.sqrt(1 - corr * corr) * rng.gauss(0, 1)
            if levels < 1000000:
                a, b = round(a * levels / 4) / (levels / 4), round(b * levels / 4) / (levels / 4)
            rows.append((y, a, b))
        if 2 <= sum(r[0] for r in rows) <= n - 2:
            break
    ys = [r[0] for r in rows]
    pa = [r[1] for r in rows if r[0]]
    na = [r[1] for r in rows if not r[0]]
    pb = [r[2] for r in rows if r[0]]
    nb = [r[2] for r in rows if not r[0]]
    va10, va01 = components(pa, na)
    vb10, vb01 = components(pb, nb)
    auc_a = roc_auc_score(ys, [r[1] for r in rows])
    auc_b = roc_auc_score(ys, [r[2] for r in rows])
    n1, n0 = len(pa), len(na)
    var = (cov(va10, va10) + cov(vb10, vb10) - 2 * cov(va10, vb10)) / n1 + \
          (cov(va01, va01) + cov(vb01, vb01) - 2 * cov(va01, vb01)) / n0
    var = max(var, 0.0)
    diff = auc_a - auc_b
    if var > 0:
        z = diff / math.sqrt(var)
        p = math.erfc(abs(z) / math.sqrt(2))
    else:
        z, p = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    for y, a, b in rows:
        cases.append("%d\t%d\t%r\t%r" % (k, y, a, b))
    expected.append("%d\t%r\t%r\t%r\t%r\t%r\t%r" % (k, auc_a, auc_b, diff, var, z, p))

with open("tests/golden/auc_paired_cases.tsv", "w") as f:
    f.write("case\tlabel\ta\tb\n" + "\n".join(cases) + "\n")
with open("tests/golden/auc_paired_expected.tsv", "w") as f:
    f.write("case\tauc_a\tauc_b\tdiff\tvar\tz\tp\n" + "\n".join(expected) + "\n")
