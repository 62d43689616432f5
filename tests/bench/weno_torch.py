#!/usr/bin/python3
"""weno_torch.py - the PyTorch twin of one weno-fit epoch (ABMIL+WENO, fmnist
encoder, lib/mil/README.md), for tests/bench/weno_epoch.sh.

    /usr/bin/python3 tests/bench/weno_torch.py [--threads T] [--epochs E]
        [--ratio R] [--idx DIR] [--seed S] [--max-bags N] [--device cpu|cuda]
        [--fast]

It rebuilds Fashion-MNIST-MIL from the IDX files itself (the paper's
construction, as mil-synth: class 6 positive, bags of 100, exactly int(100 r)
positives per positive bag, a stratified 10 % validation split), so the bag
counts match weno-fit's (r = 0.1: 512 training bags, 56 val, 94 test); the
exact composition differs, which does not matter for timing.  The bags are
held in memory as float32 in [0,1], as weno-fit's decoded-bag cache holds
them; building them is not timed (weno-fit's first epoch does include
decoding its .wbag files).

One epoch, as lib/mil/weno.c runs it:
  1. teacher pass: the training bags in shuffled order, one bag per step;
     encoder and ABMIL head in training mode; loss -(Y log(p+1e-5) +
     (1-Y) log(1-p+1e-5)); SGD step on the encoder and the teacher head; the
     pre-softmax attention A_ of every instance (before the step) kept for the
     global min/max;
  2. student pass: every training instance once, shuffled across bags, in
     mini-batches of 256; pseudo labels from the teacher head's A_ (no
     gradient, dropout active) scaled by the min/max, 0 in negative bags;
     weighted loss with w = 0.1; SGD step on the encoder and the student head;
  3. evaluation (eval mode) of the val and the test bags: student instance
     and bag (max) scores, teacher bag probability and A_, and the four AUCs.

On --device cuda the networks, the optimizers and every step run on the GPU
(weno-fit --device cuda's twin): the bags stay in pinned host memory, as
weno-fit's bag cache holds them on the host, and travel to the GPU with each
step (non-blocking copies); the clock reads after torch.cuda.synchronize().
TF32 is off for cuBLAS and cuDNN (float32 products, as weno-fit's default
deterministic mode) unless --fast (as WENO_CUDA_FAST=1).  With no usable GPU
it prints "SKIP: ..." and exits 0.

Prints one line per epoch and a summary line:
  weno_torch epoch 1 seconds 12.34 teacher 3.1 student 8.2 eval 1.0 ...
  weno_torch threads 2 epochs 1 seconds_per_epoch 12.34 peak_rss_mb 987.6 device cpu
(with more than one epoch, seconds_per_epoch is the mean of epochs 2.., as
weno_epoch.sh reads weno-fit's log)
"""
import argparse
import gzip
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-5


# ---------------- the data ----------------

def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def find_idx(folder, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    sys.exit("weno_torch.py: %s/%s(.gz) not found" % (folder, stem))


def make_bags(labels, pos_class, r, n, rng):
    """The paper's construction (lib/mil/README.md): lists of image indices and
    the bag labels."""
    k = int(n * r)
    pos = np.flatnonzero(labels == pos_class)
    neg = np.flatnonzero(labels != pos_class)
    rng.shuffle(pos)
    rng.shuffle(neg)
    s = 0.5
    # the arithmetic of lib/mil/milsynth.c, in the same order (same doubles)
    P = int(math.floor(len(neg) / ((1 - s) / (r * s) + (1 - r) / r)))
    P = min(P, len(pos))
    P -= P % k
    negpos = int(P * (1 - r) / r)
    negpos -= negpos % (n - k)
    negneg = int(P * (1 - s) / (r * s))
    negneg -= negneg % n
    pb, nb_pos = P // k, negpos // (n - k)
    if pb != nb_pos:
        if pb > nb_pos:
            P -= k * (pb - nb_pos)
        pb = min(P // k, nb_pos)
    nb = negneg // n
    bags, ys = [], []
    for j in range(pb):
        idx = np.concatenate([pos[j * k:(j + 1) * k], neg[j * (n - k):(j + 1) * (n - k)]])
        rng.shuffle(idx)
        bags.append(idx)
        ys.append(1)
    for j in range(nb):
        bags.append(neg[negpos + j * n:negpos + (j + 1) * n])
        ys.append(0)
    return bags, ys


def load_data(args):
    rng = np.random.RandomState(args.seed)
    out = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        img = read_idx(find_idx(args.idx, stem + "-images-idx3-ubyte"))
        lab = read_idx(find_idx(args.idx, stem + "-labels-idx1-ubyte"))
        bags, ys = make_bags(lab, args.pos_class, args.ratio, args.bag_size, rng)
        out[split] = (img, lab, bags, ys)
    # a stratified validation split of the training bags
    img, lab, bags, ys = out["train"]
    ys = np.array(ys)
    val = np.zeros(len(bags), dtype=bool)
    for c in (0, 1):
        idx = np.flatnonzero(ys == c)
        rng.shuffle(idx)
        val[idx[:int(len(idx) * args.val_frac)]] = True
    splits = {"train": [], "val": [], "test": []}

    def add(split, img, lab, b, y):
        x = torch.from_numpy(img[b].astype(np.float32) / 255.0).reshape(len(b), 1, 28, 28)
        il = torch.from_numpy((lab[b] == args.pos_class).astype(np.int64))
        splits[split].append((x, int(y), il))

    for i, b in enumerate(bags):
        add("val" if val[i] else "train", img, lab, b, ys[i])
    img, lab, bags, ys = out["test"]
    for b, y in zip(bags, ys):
        add("test", img, lab, b, y)
    if args.max_bags:
        for s in splits:
            p = [t for t in splits[s] if t[1] == 1][:args.max_bags]
            q = [t for t in splits[s] if t[1] == 0][:args.max_bags]
            splits[s] = p + q
    return splits


# ---------------- the networks ----------------

def cbr(cin, cout, k, s, p):
    return [nn.Conv2d(cin, cout, k, s, p), nn.BatchNorm2d(cout), nn.ReLU()]


class FMnist(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*cbr(1, 32, 6, 2, 2), *cbr(32, 64, 3, 1, 1),
                                      nn.MaxPool2d(3, 2), *cbr(64, 128, 3, 1, 1),
                                      *cbr(128, 128, 3, 1, 1), nn.MaxPool2d(3, 2))

    def forward(self, x):
        return self.features(x).flatten(1)  # n x 512


def head_init(m):
    for mod in m.modules():
        if isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, 0.0, 0.01)
            nn.init.zeros_(mod.bias)


class Abmil(nn.Module):
    def __init__(self, d, p=0.5):
        super().__init__()
        self.mlp = nn.Sequential(nn.Dropout(p), nn.Linear(d, 1024), nn.ReLU(),
                                 nn.Dropout(p), nn.Linear(1024, 1024), nn.ReLU())
        self.attention = nn.Sequential(nn.Linear(1024, 512), nn.Tanh(), nn.Linear(512, 1))
        self.classifier = nn.Linear(1024, 2)
        head_init(self)

    def scores(self, x):
        """the pre-softmax attention A_ of each instance, n"""
        return self.attention(self.mlp(x)).squeeze(1)

    def forward(self, x):
        h = self.mlp(x)
        A_ = self.attention(h)                 # n x 1
        a = F.softmax(A_.t(), dim=1)           # 1 x n
        return self.classifier(a @ h), A_.squeeze(1)


class Student(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                                 nn.Linear(4096, 2))
        head_init(self)

    def forward(self, x):
        return self.net(x)


# ---------------- one epoch ----------------

def auc(scores, labels):
    """area under the ROC curve, ties as the trapezoid rule (Mann-Whitney)"""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    npos, nneg = int(y.sum()), int((~y).sum())
    if not npos or not nneg:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return (ranks[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def teacher_pass(E, T, S, oE, oT, train, g, dev):
    E.train()
    T.train()
    S.eval()
    mn, mx, total = math.inf, -math.inf, 0.0
    for b in torch.randperm(len(train), generator=g).tolist():
        x, Y, _ = train[b]
        x = x.to(dev, non_blocking=True)
        oE.zero_grad()
        oT.zero_grad()
        logits, A_ = T(E(x))
        with torch.no_grad():
            mn = min(mn, float(A_.min()))
            mx = max(mx, float(A_.max()))
        p = F.softmax(logits, dim=1)[0, 1]
        L = -(Y * torch.log(p + EPS) + (1 - Y) * torch.log(1 - p + EPS))
        L.backward()
        oE.step()
        oT.step()
        total += float(L)
    return total / len(train), mn, mx


def student_pass(E, T, S, oE, oS, train, mn, mx, g, batch, w, dev):
    E.train()
    T.train()   # the teacher's dropout is active while labelling, as in the authors' code
    S.train()
    X = torch.cat([x for x, _, _ in train])
    bagY = torch.cat([torch.full((x.shape[0],), float(Y)) for x, Y, _ in train])
    perm = torch.randperm(X.shape[0], generator=g)
    rng = mx - mn
    total, steps = 0.0, 0
    for s in range(0, X.shape[0], batch):
        idx = perm[s:s + batch]
        if idx.numel() < 2:
            break   # BatchNorm needs two instances
        x, yb = X[idx], bagY[idx]
        if dev.type == "cuda":
            x = x.pin_memory().to(dev, non_blocking=True)  # the gather is pageable
            yb = yb.to(dev, non_blocking=True)
        oE.zero_grad()
        oS.zero_grad()
        feat = E(x)
        with torch.no_grad():
            sc = T.scores(feat)
            y = ((sc - mn) / rng if rng > 0 else torch.full_like(sc, 0.5)).clamp(EPS, 1 - EPS)
            y = torch.where(yb > 0.5, y, torch.zeros_like(y))
        q = F.softmax(S(feat), dim=1)
        L = -(w * (1 - y) * torch.log(q[:, 0] + EPS) + (1 - w) * y * torch.log(q[:, 1] + EPS)).mean()
        L.backward()
        oE.step()
        oS.step()
        total += float(L)
        steps += 1
    return total / max(steps, 1)


@torch.no_grad()
def evaluate(E, T, S, bags, dev):
    E.eval()
    T.eval()
    S.eval()
    bs, bt, by, is_, it, iy = [], [], [], [], [], []
    for x, Y, il in bags:
        x = x.to(dev, non_blocking=True)
        feat = torch.cat([E(x[i:i + 512]) for i in range(0, x.shape[0], 512)])
        q1 = F.softmax(S(feat), dim=1)[:, 1]
        logits, A_ = T(feat)
        bs.append(float(q1.max()))
        bt.append(float(F.softmax(logits, dim=1)[0, 1]))
        by.append(Y)
        is_.append(q1.cpu().numpy())
        it.append(A_.cpu().numpy())
        iy.append(il.numpy())
    is_, it, iy = np.concatenate(is_), np.concatenate(it), np.concatenate(iy)
    return auc(bs, by), auc(bt, by), auc(is_, iy), auc(it, iy)


def main():
    ap = argparse.ArgumentParser(description="PyTorch twin of one weno-fit epoch (ABMIL+WENO, fmnist)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads [2]")
    ap.add_argument("--epochs", type=int, default=1, help="epochs [1]")
    ap.add_argument("--ratio", type=float, default=0.1, help="positive ratio r [0.1]")
    ap.add_argument("--pos-class", type=int, default=6, help="positive class [6, shirt]")
    ap.add_argument("--bag-size", type=int, default=100, help="instances per bag [100]")
    ap.add_argument("--val-frac", type=float, default=0.1, help="validation fraction [0.1]")
    ap.add_argument("--idx", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST IDX folder")
    ap.add_argument("--seed", type=int, default=0, help="random seed [0]")
    ap.add_argument("--batch", type=int, default=256, help="student mini-batch [256]")
    ap.add_argument("--max-bags", type=int, default=0, help="at most N bags of each label per split (smoke test)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train [cpu]")
    ap.add_argument("--fast", action="store_true", help="cuda: allow TF32 in cuBLAS and cuDNN")
    args = ap.parse_args()

    if args.device == "cuda" and not torch.cuda.is_available():
        print("SKIP: torch %s sees no usable GPU (torch.cuda.is_available() is False)" % torch.__version__)
        return
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.fast
        torch.backends.cudnn.allow_tf32 = args.fast
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    data = load_data(args)
    if dev.type == "cuda":
        for split in data.values():
            split[:] = [(x.pin_memory(), Y, il) for x, Y, il in split]
    print("weno_torch data: %d train, %d val, %d test bags, %d training instances" %
          (len(data["train"]), len(data["val"]), len(data["test"]),
           sum(x.shape[0] for x, _, _ in data["train"])), flush=True)

    E, T, S = FMnist().to(dev), Abmil(512).to(dev), Student(512).to(dev)
    lr = 1e-3
    oE = torch.optim.SGD(E.parameters(), lr=lr)
    oT = torch.optim.SGD(T.parameters(), lr=lr)
    oS = torch.optim.SGD(S.parameters(), lr=lr)

    times = []
    for ep in range(args.epochs):
        sync(dev)
        t0 = time.perf_counter()
        tl, mn, mx = teacher_pass(E, T, S, oE, oT, data["train"], g, dev)
        sync(dev)
        t1 = time.perf_counter()
        sl = student_pass(E, T, S, oE, oS, data["train"], mn, mx, g, args.batch, 0.1, dev)
        sync(dev)
        t2 = time.perf_counter()
        val = evaluate(E, T, S, data["val"], dev)
        test = evaluate(E, T, S, data["test"], dev)
        sync(dev)
        t3 = time.perf_counter()
        times.append(t3 - t0)
        print("weno_torch epoch %d seconds %.2f teacher %.2f student %.2f eval %.2f teacher_loss %.4g "
              "student_loss %.4g pl_min %.4g pl_max %.4g val_auc %s test_auc %s" %
              (ep + 1, t3 - t0, t1 - t0, t2 - t1, t3 - t2, tl, sl, mn, mx,
               ",".join("%.4f" % v for v in val), ",".join("%.4f" % v for v in test)), flush=True)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    name = args.device
    if dev.type == "cuda":
        name = "cuda:%s%s" % (torch.cuda.get_device_name(dev).replace(" ", "_"), ":tf32" if args.fast else "")
    steady = times[1:] if len(times) > 1 else times  # epoch 1 warms cuDNN and the allocator
    print("weno_torch threads %d epochs %d seconds_per_epoch %.3f peak_rss_mb %.1f device %s" %
          (args.threads, args.epochs, sum(steady) / len(steady), rss_kb / 1024.0, name))


if __name__ == "__main__":
    main()
