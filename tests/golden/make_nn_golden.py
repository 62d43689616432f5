#!/usr/bin/python3
"""make_nn_golden.py - PyTorch reference values for tests/unit/test_nn_golden.c.

Run once with Debian's torch (python3-torch), from the repository root:
    /usr/bin/python3 tests/golden/make_nn_golden.py
It writes tests/golden/nn_golden.txt.  CI does not need torch: the text file
is committed and the C test replays every case.

Both sides fill parameters and inputs from the same integer hash (lowbias32),
so no weights are stored: element i of tensor t (t = position in
named_parameters(), inputs use t = 1000) is u = (hash(i, t) >> 8) / 2^24,
v = 2u - 1, and
    weights (ndim >= 2):          1.5 * v / sqrt(fan_in)
    BatchNorm weights (gamma):    1 + 0.1 v
    other 1-d tensors (biases):   0.1 v
    inputs:                       u
Each case runs forward (train mode: batch statistics, dropout probability 0),
the WENO loss, backward, and `steps` optimizer steps (forward/backward again
before each step), and records: the loss at every step, the logits of the
first forward, per tensor the sum, the sum of |.| and 4 sampled elements of
the first gradient and of the final parameters, and the BN running
statistics at the end.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def hash_u(n, t):
    i = np.arange(n, dtype=np.uint64)
    x = (i * np.uint64(0x9E3779B1) + np.uint64((t * 0x85EBCA77 + 0x27D4EB2F) & 0xFFFFFFFF)) \
        & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    return (x >> np.uint64(8)).astype(np.float64) * (1.0 / 16777216.0)


def sample_idx(n, t):
    u = hash_u(4, t + 7777)
    return [min(int(v * n), n - 1) for v in u]


def fill(module, t0=0):
    for t, (name, p) in enumerate(module.named_parameters()):
        n = p.numel()
        v = 2.0 * hash_u(n, t0 + t) - 1.0
        if p.dim() >= 2:
            fan_in = n // p.shape[0]
            vals = 1.5 * v / math.sqrt(fan_in)
        elif name.endswith("weight"):
            vals = 1.0 + 0.1 * v
        else:
            vals = 0.1 * v
        with torch.no_grad():
            p.copy_(torch.tensor(vals.astype(np.float32)).reshape(p.shape))


# ---------------- the networks, named as net.c names them ----------------

def cbr(cin, cout, k, s, p):
    return [nn.Conv2d(cin, cout, k, s, p), nn.BatchNorm2d(cout), nn.ReLU()]


class FMnist(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*cbr(1, 32, 6, 2, 2), *cbr(32, 64, 3, 1, 1),
                                      nn.MaxPool2d(3, 2), *cbr(64, 128, 3, 1, 1),
                                      *cbr(128, 128, 3, 1, 1), nn.MaxPool2d(3, 2))

    def forward(self, x):
        return self.features(x).flatten(1)


class Cifar(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*cbr(3, 96, 3, 1, 1), nn.MaxPool2d(3, 2),
                                      *cbr(96, 192, 3, 1, 1), nn.MaxPool2d(3, 2),
                                      *cbr(192, 384, 3, 1, 1), *cbr(384, 384, 3, 1, 1),
                                      *cbr(384, 192, 3, 1, 1), nn.MaxPool2d(3, 2))

    def forward(self, x):
        return self.features(x).flatten(1)


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        sc = x if self.downsample is None else self.downsample(x)
        return F.relu(y + sc)


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for s, planes in enumerate([64, 128, 256, 512]):
            blocks = []
            for k in range(2):
                stride = 2 if s > 0 and k == 0 else 1
                blocks.append(Block(cin, planes, stride))
                cin = planes
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for s in range(4):
            x = getattr(self, "layer%d" % (s + 1))(x)
        return x.mean(dim=(2, 3))


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, 512)
        self.bn = nn.BatchNorm1d(512)

    def forward(self, x):
        return self.bn(self.fc(x))


class Abmil(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 1024)
        self.fc2 = nn.Linear(1024, 1024)
        self.attention_V = nn.Linear(1024, 512)
        self.attention_w = nn.Linear(512, 1)
        self.classifier = nn.Linear(1024, 2)

    def forward(self, x):
        h = F.relu(self.fc2(F.relu(self.fc1(x))))
        A_ = self.attention_w(torch.tanh(self.attention_V(h)))  # n x 1
        a = F.softmax(A_.t(), dim=1)                               # 1 x n
        z = a @ h
        return self.classifier(z), A_


class Dsmil(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 1024)
        self.fc2 = nn.Linear(1024, 1024)
        self.instance_classifier = nn.Linear(1024, 2)
        self.q = nn.Linear(1024, 1024)
        self.v = nn.Linear(1024, 1024)
        self.fcc = nn.Conv1d(2, 2, kernel_size=1024)

    def forward(self, x):
        h = F.relu(self.fc2(F.relu(self.fc1(x))))
        c = self.instance_classifier(h)                            # n x 2
        V = self.v(h)
        Q = self.q(h)
        _, m = torch.sort(c, 0, descending=True)
        q_max = self.q(h[m[0, :]])                                 # 2 x 1024
        A = Q @ q_max.t()
        A = F.softmax(A / math.sqrt(Q.shape[1]), 0)                 # n x 2
        B = A.t() @ V                                              # 2 x 1024
        return self.fcc(B.unsqueeze(0)).view(1, -1), c


class Student(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 4096)
        self.fc2 = nn.Linear(4096, 4096)
        self.fc3 = nn.Linear(4096, 2)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x))))), None


ENCODERS = {"fmnist": (FMnist, (1, 28, 28)), "cifar": (Cifar, (3, 32, 32)),
            "resnet18": (ResNet18, (3, 64, 64))}


def loss_of(kind, logits, scores, label, ysoft):
    if kind == "abmil":
        p = F.softmax(logits, dim=1)[:, 1]
        y = float(label)
        return -(y * torch.log(p + 1e-5) + (1 - y) * torch.log(1 - p + 1e-5)).mean()
    if kind == "dsmil":
        tgt = torch.tensor([label])
        i = int(torch.argmax(scores[:, 1]))
        return 0.5 * F.cross_entropy(logits, tgt) + 0.5 * F.cross_entropy(scores[i:i + 1], tgt)
    q = F.softmax(logits, dim=1)
    w = 0.1
    return -(w * (1 - ysoft) * torch.log(q[:, 0] + 1e-5) +
             (1 - w) * ysoft * torch.log(q[:, 1] + 1e-5)).mean()


def stats(name, t, tidx, out, tag, mod):
    a = t.detach().double().flatten()
    n = a.numel()
    idx = sample_idx(n, tidx)
    vals = " ".join("%d %.9g" % (i, float(a[i])) for i in idx)
    out.append("%s %s %s %d %.9g %.9g %s" % (tag, mod, name, n, float(a.sum()),
                                             float(a.abs().sum()), vals))


def run_case(out, name, enc, dim, head, n, label, opt, lr, steps, extra):
    torch.manual_seed(0)
    if enc == "mlp":
        E = Mlp(dim)
        shape = (dim,)
    else:
        cls, shape = ENCODERS[enc]
        E = cls()
    d = 512 if enc != "cifar" else 1728
    H = {"abmil": Abmil, "dsmil": Dsmil, "student": Student}[head](d)
    fill(E, 0)
    fill(H, 100)
    nx = n * int(np.prod(shape))
    x = torch.tensor(hash_u(nx, 1000).astype(np.float32)).reshape((n,) + tuple(shape))
    ysoft = torch.tensor(hash_u(n, 1001).astype(np.float32))
    E.train()
    H.train()
    mods = [("enc", E), ("head", H)]
    opts = []
    for _, m in mods:
        if opt == "sgd":
            opts.append(torch.optim.SGD(m.parameters(), lr=lr, **extra))
        else:
            opts.append(torch.optim.Adam(m.parameters(), lr=lr, **extra))
    kw = " ".join("%s=%s" % (k, v) for k, v in sorted(extra.items()))
    out.append("case %s enc=%s dim=%d head=%s n=%d label=%d opt=%s lr=%g steps=%d %s" %
               (name, enc, dim if enc == "mlp" else 0, head, n, label, opt, lr, steps, kw))
    for step in range(steps + 1):
        for o in opts:
            o.zero_grad()
        feat = E(x)
        logits, scores = H(feat)
        L = loss_of(head, logits, scores, label, ysoft)
        L.backward()
        out.append("loss %d %.9g" % (step, float(L)))
        if step == 0:
            lg = logits.detach().double().flatten()
            out.append("logits %d %s" % (lg.numel(), " ".join("%.9g" % float(v) for v in lg)))
            for mname, m in mods:
                for t, (pn, p) in enumerate(m.named_parameters()):
                    stats(pn, p.grad, t + (0 if mname == "enc" else 100), out, "grad", mname)
        if step == steps:
            break
        for o in opts:
            o.step()
    for mname, m in mods:
        for t, (pn, p) in enumerate(m.named_parameters()):
            stats(pn, p, t + (0 if mname == "enc" else 100), out, "param", mname)
        for t, (bn, b) in enumerate(m.named_buffers()):
            if bn.endswith("num_batches_tracked"):
                continue
            stats(bn, b, t + 500, out, "buffer", mname)
    out.append("end")


def main():
    out = ["# generated by tests/golden/make_nn_golden.py with torch %s; do not edit" %
           torch.__version__]
    run_case(out, "fmnist_abmil_sgd", "fmnist", 0, "abmil", 6, 1, "sgd", 1e-2, 2,
             {"momentum": 0.9, "weight_decay": 1e-4})
    run_case(out, "fmnist_student_adam", "fmnist", 0, "student", 5, 0, "adam", 1e-3, 2,
             {"weight_decay": 1e-4})
    run_case(out, "mlp_dsmil_adam", "mlp", 16, "dsmil", 7, 0, "adam", 1e-3, 2, {})
    run_case(out, "mlp_abmil_sgd", "mlp", 16, "abmil", 5, 0, "sgd", 1e-2, 3,
             {"momentum": 0.9, "nesterov": True})
    run_case(out, "cifar_student_sgd", "cifar", 0, "student", 4, 0, "sgd", 1e-2, 2, {})
    run_case(out, "cifar_dsmil_sgd", "cifar", 0, "dsmil", 4, 1, "sgd", 1e-2, 1,
             {"momentum": 0.5, "dampening": 0.1})
    # 64x64 so that layer4's BatchNorm sees 3x2x2 values per channel: with 2
    # values it normalises to +-1 and its gradient lives in eps alone
    run_case(out, "resnet18_abmil_sgd", "resnet18", 0, "abmil", 3, 1, "sgd", 1e-2, 1, {})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_golden.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d lines)" % (path, len(out)), file=sys.stderr)


if __name__ == "__main__":
    main()
