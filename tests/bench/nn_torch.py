#!/usr/bin/python3
"""nn_torch.py - the PyTorch twin of bench_nn.c: same networks, same steps
(forward + loss + backward + SGD step), same thread count (WENO_THREADS,
default 2).  Prints "nn <case> <inst/s>" lines like bench_nn."""
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
from make_nn_golden import FMnist, Abmil, Student  # noqa: E402

threads = int(os.environ.get("WENO_THREADS", "2"))
steps = int(os.environ.get("WENO_BENCH_STEPS", "6"))
torch.set_num_threads(threads)
torch.manual_seed(0)


def run(kind, n, steps):
    E = FMnist()
    if kind == "abmil":
        H = Abmil(512)
        drop = nn.Dropout(0.5)
    else:
        H = Student(512)
        drop = None
    opt = torch.optim.SGD(list(E.parameters()) + list(H.parameters()), lr=1e-3)
    x = torch.rand(n, 1, 28, 28)
    y = torch.rand(n)
    t0 = 0
    for s in range(steps + 1):
        if s == 1:
            t0 = time.perf_counter()
        opt.zero_grad()
        f = E(x)
        if drop is not None:
            f = drop(f)  # the head's first dropout (the twin head has none inside)
        logits, _ = H(f)
        if kind == "abmil":
            p = F.softmax(logits, 1)[:, 1]
            L = -torch.log(p + 1e-5).mean()
        else:
            q = F.softmax(logits, 1)
            L = -(0.1 * (1 - y) * torch.log(q[:, 0] + 1e-5) +
                  0.9 * y * torch.log(q[:, 1] + 1e-5)).mean()
        L.backward()
        opt.step()
    return n * steps / (time.perf_counter() - t0)


print("threads %d" % threads)
print("nn fmnist+student-batch256 %.1f" % run("student", 256, steps))
print("nn fmnist+abmil-bag100 %.1f" % run("abmil", 100, steps * 3))
