#!/usr/bin/python3
"""Golden values for lib/mil/metrics.c: AUC from scikit-learn's roc_auc_score and
DeLong's variance by its O(n1*n0) definition, on seeded cases with many ties.
Run once with Debian's python3-sklearn: /usr/bin/python3 tests/golden/make_auc_golden.py
Writes tests/golden/auc_cases.tsv and tests/golden/auc_expected.tsv."""
import random
from sklearn.metrics import roc_auc_score

def delong_var(pos, neg):
    psi = lambda x, y: 1.0 if x > y else (0.5 if x == y else 0.0)
    v10 = [sum(psi(x, y) for y in neg) / len(neg) for x in pos]
    v01 = [sum(psi(x, y) for x in pos) / len(pos) for y in neg]
    def s2(v):
        m = sum(v) / len(v)
        return sum((a - m) ** 2 for a in v) / (len(v) - 1)
    return s2(v10) / len(pos) + s2(v01) / len(neg)

rng = random.Random(20221128)
cases = []
for k in range(40):
    n = rng.choice([5, 12, 50, 200, 731])
    levels = rng.choice([2, 3, 10, 1000000])      # few levels -> many ties
    sep = rng.choice([0.0, 0.3, 1.0, 3.0])
    rows = []
    while True:
        rows = []
        for _ in range(n):
            y = 1 if rng.random() < rng.choice([0.1, 0.5, 0.7]) else 0
            s = rng.gauss(sep * y, 1.0)
            s = round(s * levels / 4) / (levels / 4) if levels < 1000000 else s
            rows.append((s, y))
        ys = [y for _, y in rows]
        if 0 < sum(ys) < n and sum(ys) >= 2 and n - sum(ys) >= 2:
            break
    cases.append(rows)

with open("tests/golden/auc_cases.tsv", "w") as f, open("tests/golden/auc_expected.tsv", "w") as g:
    f.write("case\tscore\tlabel\n")
    g.write("case\tauc\tdelong_var\n")
    for k, rows in enumerate(cases):
        for s, y in rows:
            f.write("%d\t%.17g\t%d\n" % (k, s, y))
        pos = [s for s, y in rows if y]
        neg = [s for s, y in rows if not y]
        auc = roc_auc_score([y for _, y in rows], [s for s, _ in rows])
        g.write("%d\t%.17g\t%.17g\n" % (k, auc, delong_var(pos, neg)))
