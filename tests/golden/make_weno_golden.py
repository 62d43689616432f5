#!/usr/bin/python3
"""make_weno_golden.py - the authors' WENO training loop, transcribed in
PyTorch from shared/WENO-reference.md (the reading of micciaif/WENO @ 483ddae
that it cites as W), as a test oracle for weno-fit.

It is a transcription of their scripts, not of lib/mil/weno.c: their three
modules with three SGD optimizers (W tCA:561-567), their Optimizer class
(optimize, optimize_teacher, evaluate_teacher, optimize_student,
evaluate_student, in their order and with their train/eval modes), their
loss formulas, the bank of pre-step teacher scores with its global min/max
(W tCA:140-152), the pseudo labels made on the fly with the teacher head in
train mode (W tCA:246-273), negative bags' labels zeroed, mining by
threshold (the Camelyon rule, W tKA:97-125) and by top-K (W tCA:115-117),
the DSMIL head and its loss (W tCD:85-165, W models/alexnet.py:636-713).
Where the authors' release has no script (teacher alone, the supervised
student, separate encoders) it makes the choices WENO.md describes, said
where they are made.

Two uses:

  golden (default): writes tests/golden/weno_golden.txt, which
    tests/unit/test_weno_golden.c replays through weno_fit.  Run once with
    Debian's torch, from the repository root:
        /usr/bin/python3 tests/golden/make_weno_golden.py
    Each case is a small set of feature bags (mlp encoder, D = 8) whose
    values come from the integer hash of make_nn_golden.py, as the weights
    do (module k of weno-fit's model file: tensor t from hash(i, 100 k + t));
    the order of every pass is drawn here and written into the file (weno-fit
    reads it through WENO_TEST_ORDER); dropout is off (WENO_TEST_DROPOUT=0),
    except in cases marked dropout=pcg, whose masks are drawn as weno-fit
    draws them (PCG32, seed and stream (epoch+1)*16+2 for the teacher pass,
    +4 for the student pass, rng_float() < p dropped, element order): the one
    place the oracle borrows weno-fit's randomness, so that which pass draws
    masks (the dropout modes) is tested too.  The authors evaluate on their
    test bags; here those are the cases' validation bags.  Recorded per
    epoch: every teacher step's loss and the rows it saw, the bank's min and
    max, each tensor's sum and sum of |.| after each pass, every student
    step's loss, the teacher's AUCs (after its pass, as the authors judge
    it) and the student's.

  curves: trains on a manifest that mil-synth wrote (Fashion-MNIST-MIL),
    with PyTorch's own initialisation and random numbers, dropout on, and
    writes weno-fit's log columns (test AUCs per epoch) for
    pipelines/fidelity.mk:
        make_weno_golden.py curves -m DS/manifest.tsv --bin build/bin \\
            --seed S --epochs E --w 0.2 --log out.tsv
"""
import argparse
import gzip
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_golden import fill, hash_u  # noqa: E402  (the same hash, the same fill)

# ---------------- dropout and its masks ----------------

M64 = (1 << 64) - 1


class Pcg32:
    """lib/base/rng.c: PCG32 XSH-RR, seeded as pcg32_srandom_r"""

    def __init__(self, seed, stream):
        self.state, self.inc = 0, ((stream << 1) | 1) & M64
        self.u32()
        self.state = (self.state + seed) & M64
        self.u32()

    def u32(self):
        old = self.state
        self.state = (old * 6364136223846793005 + self.inc) & M64
        x = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        r = old >> 59
        return ((x >> r) | (x << ((-r) & 31))) & 0xFFFFFFFF


class PcgMasks:
    """weno-fit's dropout masks: one stream a pass, drawn in element order"""

    TEACHER, STUDENT = 2, 4

    def __init__(self, seed):
        self.seed, self.rng = seed, None

    def begin(self, epoch, purpose):
        self.rng = Pcg32(self.seed, (epoch + 1) * 16 + purpose)

    def mask(self, shape, p):
        n = int(np.prod(shape))
        keep = np.fromiter((((self.rng.u32() >> 8) * (1.0 / 16777216.0)) >= p for _ in range(n)),
                           dtype=bool, count=n)
        return torch.from_numpy(np.where(keep, np.float32(1.0 / (1.0 - p)), np.float32(0.0))
                                .astype(np.float32)).reshape(shape)


class TorchMasks:
    """PyTorch's own dropout (curves)"""

    def begin(self, epoch, purpose):
        pass


class Dropout(nn.Module):
    """nn.Dropout(p), with its masks from `masks` when they are weno-fit's"""

    def __init__(self, p, masks):
        super().__init__()
        self.p, self.masks = p, masks

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if isinstance(self.masks, PcgMasks):
            return x * self.masks.mask(tuple(x.shape), self.p)
        return F.dropout(x, self.p, True)


# ---------------- the authors' modules (W models/alexnet.py) ----------------

def init_linear_heads(module):
    """_initialize_weights (W alexnet.py:620-633): Linear N(0, 0.01), bias 0;
    the Conv1d keeps PyTorch's default"""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0, 0.01)
            m.bias.data.zero_()


class AttentionHead(nn.Module):
    """AlexNet_CIFAR10_attention(features=None) (W alexnet.py:559-633), the
    ABMIL teacher head"""
    unused = ()

    def __init__(self, d, p, masks):
        super().__init__()
        self.classifier = nn.Sequential(Dropout(p, masks), nn.Linear(d, 1024), nn.ReLU(inplace=True),
                                        Dropout(p, masks), nn.Linear(1024, 1024), nn.ReLU(inplace=True))
        self.attention = nn.Sequential(nn.Linear(1024, 512), nn.Tanh(), nn.Linear(512, 1))
        self.top_layer = nn.Linear(1024, 2)
        init_linear_heads(self)

    def forward(self, x, returnBeforeSoftMaxA=False):
        x = self.classifier(x)
        A_ = self.attention(x)            # N x 1
        A_ = torch.transpose(A_, 1, 0)    # 1 x N
        A = F.softmax(A_, dim=1)
        x = torch.mm(A, x)
        x = self.top_layer(x)
        if returnBeforeSoftMaxA:
            return x, 0, A, A_
        return x, 0, A


class DsmilHead(nn.Module):
    """AlexNet_CIFAR10_dsmil(features=None) (W alexnet.py:636-728)"""
    unused = ("top_layer.",)              # built, never used

    def __init__(self, d, p, masks):
        super().__init__()
        self.classifier = nn.Sequential(Dropout(p, masks), nn.Linear(d, 1024), nn.ReLU(inplace=True),
                                        Dropout(p, masks), nn.Linear(1024, 1024), nn.ReLU(inplace=True))
        self.fc_dsmil = nn.Sequential(nn.Linear(1024, 2))
        self.q_dsmil = nn.Linear(1024, 1024)
        self.v_dsmil = nn.Sequential(Dropout(0.0, masks), nn.Linear(1024, 1024))
        self.fcc_dsmil = nn.Conv1d(2, 2, kernel_size=1024)
        self.top_layer = nn.Linear(1024, 2)
        init_linear_heads(self)

    def forward(self, x):
        feat = self.classifier(x)
        instance_pred = self.fc_dsmil(feat)
        V = self.v_dsmil(feat)
        Q = self.q_dsmil(feat).view(feat.shape[0], -1)
        _, m_indices = torch.sort(instance_pred, 0, descending=True)
        m_feats = torch.index_select(feat, dim=0, index=m_indices[0, :])
        q_max = self.q_dsmil(m_feats)
        A = torch.mm(Q, q_max.transpose(0, 1))
        A = F.softmax(A / torch.sqrt(torch.tensor(Q.shape[1], dtype=torch.float32)), 0)
        B = torch.mm(A.transpose(0, 1), V)
        B = B.view(1, B.shape[0], B.shape[1])
        C = self.fcc_dsmil(B).view(1, -1)
        return instance_pred, C, A, B


class StudentHead(nn.Module):
    """AlexNet_CIFAR10(None) (W alexnet.py:180-235): no dropout"""
    unused = ()

    def __init__(self, d):
        super().__init__()
        self.classifier = nn.Sequential(nn.Linear(d, 4096), nn.ReLU(inplace=True),
                                        nn.Linear(4096, 4096), nn.ReLU(inplace=True))
        self.top_layer = nn.Linear(4096, 2)
        init_linear_heads(self)

    def forward(self, x):
        return self.top_layer(self.classifier(x))


class FeatProjecter(nn.Module):
    """feat_projecter (W alexnet.py:766-790): the feature scripts' encoder"""
    unused = ()

    def __init__(self, d):
        super().__init__()
        self.projecter = nn.Sequential(nn.Linear(d, 512), nn.BatchNorm1d(512))

    def forward(self, x):
        return self.projecter(x)


class MnistEncoder(nn.Module):
    """make_layers_features(CFG['mnist'], 1, bn=True) (W alexnet.py:11-16,
    335-350), flattened to 512"""
    unused = ()

    def __init__(self):
        super().__init__()
        layers, cin = [], 1
        for v in [(32, 6, 2, 2), (64, 3, 1, 1), 'M', (128, 3, 1, 1), (128, 3, 1, 1), 'M']:
            if v == 'M':
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
            else:
                layers += [nn.Conv2d(cin, v[0], kernel_size=v[1], stride=v[2], padding=v[3]),
                           nn.BatchNorm2d(v[0]), nn.ReLU(inplace=True)]
                cin = v[0]
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x).flatten(1)


# ---------------- data: bags, orders ----------------

class Data:
    """Bags as the authors' loaders hand them over: the training bags one at
    a time (train_loader_bag, batch 1, shuffled), every training instance in
    shuffled mini-batches (train_loader_instance), and the evaluation bags.
    bags: lists of (x [n, ...] float32 tensor, instance labels [n] long, Y)."""

    def __init__(self, train, test, batch, order):
        self.train, self.test, self.batch, self.order = train, test, batch, order
        self.X = torch.cat([x for x, _, _ in train])
        self.IL = torch.cat([il for _, il, _ in train])
        self.BL = torch.cat([torch.full((x.shape[0],), Y, dtype=torch.long) for x, _, Y in train])

    def bags(self, epoch):
        for b in self.order.teacher(epoch, len(self.train)):
            yield self.train[b]

    def batches(self, epoch):
        perm = torch.as_tensor(self.order.student(epoch, self.X.shape[0]), dtype=torch.long)
        for s in range(0, perm.numel(), self.batch):   # drop_last=False
            idx = perm[s:s + self.batch]
            yield self.X[idx], self.IL[idx], self.BL[idx]


class ListOrder:
    """the golden's orders: drawn here, written to the file"""

    def __init__(self, rs, epochs, nbags, ninst):
        self.t = [list(rs.permutation(nbags)) for _ in range(epochs)]
        self.s = [list(rs.permutation(ninst)) for _ in range(epochs)]

    def teacher(self, epoch, n):
        return self.t[epoch]

    def student(self, epoch, n):
        return self.s[epoch]


class TorchOrder:
    """DataLoader(shuffle=True): torch.randperm from the global generator"""

    def teacher(self, epoch, n):
        return torch.randperm(n).tolist()

    def student(self, epoch, n):
        return torch.randperm(n).tolist()


# ---------------- metrics and the trace ----------------

def auc(scores, labels):
    """area under the ROC curve, ties as the trapezoid rule (Mann-Whitney;
    utliz.cal_auc is sklearn's roc_auc_score)"""
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


class Trace:
    def __init__(self):
        self.lines = []

    def add(self, fmt, *args):
        self.lines.append(fmt % args)

    def modules(self, epoch, pass_, mods):
        for name, m in mods:
            params = [(n, p) for n, p in m.named_parameters() if not n.startswith(m.unused)]
            for i, (n, p) in enumerate(params):
                a = p.detach().double()
                self.add("sums %d %s %s %d %s %d %.9g %.9g", epoch + 1, pass_, name, i, n, a.numel(),
                         float(a.sum()), float(a.abs().sum()))
            bufs = [(n, b) for n, b in m.named_buffers() if not n.endswith("num_batches_tracked")]
            for i, (n, b) in enumerate(bufs):
                a = b.detach().double()
                self.add("state %d %s %s %d %s %d %.9g %.9g", epoch + 1, pass_, name, i, n, a.numel(),
                         float(a.sum()), float(a.abs().sum()))


# ---------------- the authors' loop ----------------

class Optimizer:
    """The authors' Optimizer (W tCA:26-476, W tCD, W tKA), one class for
    their ABMIL and DSMIL scripts.  method: 'weno' (their scripts), 'teacher'
    (the teacher alone: optimize_teacher and evaluate_teacher only) or
    'supervised' (optimize_student on true instance labels).  With a second
    encoder enc_t (weno-fit's --separate-encoders, which the authors did not
    release) the teacher trains and scores with enc_t, the student with enc;
    each pass finds the other encoder in evaluation mode, as the previous
    evaluation (evaluate_teacher or evaluate_student) leaves it."""

    def __init__(self, enc, tea, stu, data, conf, masks, trace, enc_t=None):
        self.enc, self.tea, self.stu, self.data = enc, tea, stu, data
        self.enc_t = enc_t if enc_t is not None else enc
        self.c, self.masks, self.trace = conf, masks, trace
        lr, mom = conf["lr"], conf.get("momentum", 0.0)
        # one plain SGD each (W tCA:565-567); momentum only where a case asks
        self.optimizer_encoder = torch.optim.SGD(enc.parameters(), lr=lr, momentum=mom) if enc else None
        self.optimizer_encoder_t = (torch.optim.SGD(enc_t.parameters(), lr=lr, momentum=mom)
                                    if enc_t is not None else self.optimizer_encoder)
        self.optimizer_teacherHead = torch.optim.SGD(tea.parameters(), lr=lr, momentum=mom) if tea else None
        self.optimizer_studentHead = torch.optim.SGD(stu.parameters(), lr=lr, momentum=mom) if stu else None
        self.dsmil = isinstance(tea, DsmilHead)
        self.smoothE = conf["hpm_epoch"]
        self.stu_loss_weight_neg = conf["w"]
        self.results = []

    def modules(self):
        mods = [("enc", self.enc)]
        if self.tea is not None:
            mods.append(("teacher", self.tea))
        if self.stu is not None:
            mods.append(("student", self.stu))
        if self.enc_t is not self.enc:
            mods.append(("enc_t", self.enc_t))
        return mods

    def optimize(self):
        for epoch in range(self.c["epochs"]):
            row = {}
            if self.c["method"] != "supervised":
                self.optimize_teacher(epoch)
                row.update(self.evaluate_teacher(epoch))
            if self.c["method"] != "teacher":
                self.optimize_student(epoch)
                row.update(self.evaluate_student(epoch))
            self.results.append(row)

    # W tCA:85-174 (ABMIL), W tCD:85-165 (DSMIL), mining as W tKA:97-125
    def optimize_teacher(self, epoch):
        enc = self.enc_t
        enc.train()
        self.tea.train()
        if self.stu is not None:
            self.stu.eval()
        if self.enc_t is not self.enc:
            self.enc.eval()
        self.masks.begin(epoch, PcgMasks.TEACHER)
        bank = []
        hpm = self.c["method"] == "weno" and self.c["hpm"] != "off" and epoch > self.smoothE
        for it, (data, _, Y) in enumerate(self.data.bags(epoch)):
            feat = enc(data)
            feat_in = feat
            if hpm and Y == 1:
                with torch.no_grad():
                    fs = feat if self.enc_t is self.enc else self.enc(data)
                    pred_byStudent = torch.softmax(self.stu(fs), dim=1)[:, 1]
                if self.c["hpm"] == "topk":
                    # strategy A: keep the K least positive (W tCA:115-117)
                    k = min(self.c["hpm_k"], pred_byStudent.shape[0])
                    idx_to_keep = torch.topk(-pred_byStudent, k=k)[1]
                else:
                    # strategy B, the Camelyon rule (W tKA:108-112)
                    idx_to_keep = torch.where(pred_byStudent <= self.c["hpm_tau"])[0]
                    if idx_to_keep.shape[0] == 0:
                        idx_to_keep = torch.topk(pred_byStudent, k=1)[1]
                feat_in = feat[idx_to_keep]
            y = torch.tensor([Y])
            if self.dsmil:
                instance_attn_score, bag_prediction, _, _ = self.tea(feat_in)
                max_id = torch.argmax(instance_attn_score[:, 1])
                bag_pred_byMax = instance_attn_score[max_id, :].squeeze(0)
                loss_teacher = 0.5 * F.cross_entropy(bag_prediction, y) + \
                    0.5 * F.cross_entropy(bag_pred_byMax.unsqueeze(0), y)
                scores = instance_attn_score[:, 1].detach()
            else:
                bag_prediction, _, _, instance_attn_score = self.tea(feat_in, returnBeforeSoftMaxA=True)
                bag_prediction = torch.softmax(bag_prediction, 1)
                loss_teacher = -1. * (Y * torch.log(bag_prediction[0, 1] + 1e-5) +
                                      (1. - Y) * torch.log(1. - bag_prediction[0, 1] + 1e-5))
                scores = instance_attn_score.detach().squeeze(0)
            self.optimizer_encoder_t.zero_grad()
            self.optimizer_teacherHead.zero_grad()
            loss_teacher.backward()
            self.optimizer_encoder_t.step()
            self.optimizer_teacherHead.step()
            kept = scores.shape[0]
            if kept < feat.shape[0]:   # the bank's padding (W tKA:115)
                scores = torch.cat([scores, scores.min() * torch.ones(feat.shape[0] - kept)])
            bank.append(scores)
            self.trace.add("tloss %d %d %.9g %d", epoch + 1, it + 1, float(loss_teacher), kept)
        bank = torch.cat(bank)
        self.estimated_AttnScore_norm_para_min = bank.min()
        self.estimated_AttnScore_norm_para_max = bank.max()
        self.trace.add("bank %d %.9g %.9g", epoch + 1, float(bank.min()), float(bank.max()))
        self.trace.modules(epoch, "teacher", self.modules())

    def norm_AttnScore2Prob(self, attn_score):
        return (attn_score - self.estimated_AttnScore_norm_para_min) / \
            (self.estimated_AttnScore_norm_para_max - self.estimated_AttnScore_norm_para_min)

    # W tCA:246-314 (W tCD:237-305 for DSMIL's pseudo labels)
    def optimize_student(self, epoch):
        supervised = self.c["method"] == "supervised"
        if not supervised:
            # in train mode: its dropout draws while labelling (weno-fit's
            # --no-pl-dropout, pl_dropout=0, is eval mode instead)
            self.tea.train(self.c.get("pl_dropout", 1) == 1)
            if self.enc_t is not self.enc:
                self.enc_t.eval()
        self.enc.train()
        self.stu.train()
        self.masks.begin(epoch, PcgMasks.STUDENT)
        w = self.stu_loss_weight_neg
        for it, (data, inst_label, bag_label) in enumerate(self.data.batches(epoch)):
            feat = self.enc(data)
            if not supervised:
                with torch.no_grad():
                    ft = feat if self.enc_t is self.enc else self.enc_t(data)
                    if self.dsmil:
                        instance_attn_score, _, _, _ = self.tea(ft)
                        s = instance_attn_score[:, 1]
                    else:
                        _, _, _, instance_attn_score = self.tea(ft, returnBeforeSoftMaxA=True)
                        s = instance_attn_score
                    pseudo_instance_label = self.norm_AttnScore2Prob(s).clamp(min=1e-5, max=1 - 1e-5).squeeze(0)
                    pseudo_instance_label[bag_label == 0] = 0
            logits = self.stu(feat)
            if supervised:
                # no script of theirs (their only trace, a commented DEBUG line
                # at W tCA:274, feeds true labels into the weighted loss); as
                # WENO.md: cross-entropy on the true instance labels
                loss_student = F.cross_entropy(logits, inst_label)
            else:
                patch_prediction = torch.softmax(logits, dim=1)
                loss_student = -1. * torch.mean(
                    w * (1 - pseudo_instance_label) * torch.log(patch_prediction[:, 0] + 1e-5) +
                    (1 - w) * pseudo_instance_label * torch.log(patch_prediction[:, 1] + 1e-5))
            self.optimizer_encoder.zero_grad()
            self.optimizer_studentHead.zero_grad()
            loss_student.backward()
            self.optimizer_encoder.step()
            self.optimizer_studentHead.step()
            self.trace.add("sloss %d %d %.9g", epoch + 1, it + 1, float(loss_student))
        self.trace.modules(epoch, "student", self.modules())

    # W tCA:379-425
    @torch.no_grad()
    def evaluate_teacher(self, epoch):
        self.enc_t.eval()
        self.tea.eval()
        if self.stu is not None:
            self.stu.eval()
        bag_pred, bag_gt, inst_pred, inst_gt = [], [], [], []
        for x, il, Y in self.data.test:
            feat = self.enc_t(x)
            if self.dsmil:
                c, C, _, _ = self.tea(feat)
                inst_pred.append(c[:, 1].numpy())
                bag_pred.append(float(torch.softmax(C, 1)[0, 1]))
            else:
                logits, _, _, A_ = self.tea(feat, returnBeforeSoftMaxA=True)
                inst_pred.append(A_.squeeze(0).numpy())
                bag_pred.append(float(torch.softmax(logits, 1)[0, 1]))
            bag_gt.append(Y)
            inst_gt.append(il.numpy())
        b, i = auc(bag_pred, bag_gt), auc(np.concatenate(inst_pred), np.concatenate(inst_gt))
        self.trace.add("auc %d teacher %.9g %.9g", epoch + 1, b, i)
        return {"test_teacher_bag_auc": b, "test_teacher_inst_auc": i}

    # W tCA:427-476 (instances in batches, the bag score their max)
    @torch.no_grad()
    def evaluate_student(self, epoch):
        self.enc.eval()
        self.stu.eval()
        bag_pred, bag_gt, inst_pred, inst_gt = [], [], [], []
        for x, il, Y in self.data.test:
            q = torch.cat([torch.softmax(self.stu(self.enc(x[s:s + 512])), dim=1)[:, 1]
                           for s in range(0, x.shape[0], 512)])
            inst_pred.append(q.numpy())
            inst_gt.append(il.numpy())
            bag_pred.append(float(q.max()))
            bag_gt.append(Y)
        b, i = auc(bag_pred, bag_gt), auc(np.concatenate(inst_pred), np.concatenate(inst_gt))
        self.trace.add("auc %d student %.9g %.9g", epoch + 1, b, i)
        return {"test_student_bag_auc": b, "test_student_inst_auc": i}


def build(conf, d_in, masks, encoder, t0=None):
    """the modules in weno-fit's model-file order (enc, teacher, student,
    enc_t); with t0 (golden) filled from the hash, module k from 100 k"""
    p = 0.0 if conf.get("dropout", "pcg") == "off" else conf.get("head_dropout", 0.5)
    method = conf["method"]
    enc = encoder()
    tea = None
    if method != "supervised":
        tea = (DsmilHead if conf["teacher"] == "dsmil" else AttentionHead)(512, p, masks)
    stu = StudentHead(512) if method != "teacher" else None
    enc_t = encoder() if method == "weno" and conf.get("shared", 1) == 0 else None
    if t0 is not None:
        for k, m in enumerate([x for x in (enc, tea, stu, enc_t) if x is not None]):
            fill(m, 100 * k)
    return enc, tea, stu, enc_t


# ---------------- golden ----------------

D = 8        # features per instance in the golden cases


def bag_features(b, labels):
    """instance i of the case's bag b (position in its bag list): hash
    values, the first two features shifted by 0.5 for positive instances"""
    n = len(labels)
    u = hash_u(n * D, 2000 + b).reshape(n, D)
    shift = np.zeros((n, D))
    shift[:, :2] = 0.5 * np.asarray(labels, dtype=np.float64)[:, None]
    return torch.from_numpy((u + shift).astype(np.float32))


# split, bag label, instance labels (one character each)
BAGS = [("train", 1, "0100100"), ("train", 0, "000000"), ("train", 1, "10000"), ("train", 0, "00000000"),
        ("train", 1, "00110000"), ("train", 0, "0000000"), ("train", 1, "000001"), ("train", 0, "00000"),
        ("val", 1, "0010000"), ("val", 0, "000000"), ("val", 1, "100001"), ("val", 0, "00000000")]

BASE = {"method": "weno", "teacher": "abmil", "shared": 1, "epochs": 2, "seed": 0, "w": 0.2,
        "hpm": "off", "hpm_tau": 0.5, "hpm_epoch": 10, "hpm_k": 10, "pl_dropout": 1, "batch": 16,
        "lr": 0.02, "momentum": 0.0, "dropout": "off"}

CASES = [
    ("abmil_weno", {}),
    ("dsmil_weno", {"teacher": "dsmil"}),
    ("abmil_hpm_threshold", {"hpm": "threshold", "hpm_epoch": 0, "hpm_tau": 0.45}),
    ("dsmil_hpm_topk", {"teacher": "dsmil", "hpm": "topk", "hpm_epoch": 0, "hpm_k": 3}),
    ("abmil_separate", {"shared": 0, "hpm": "threshold", "hpm_epoch": 0, "hpm_tau": 0.5}),
    ("abmil_teacher", {"method": "teacher"}),
    ("dsmil_teacher", {"method": "teacher", "teacher": "dsmil"}),
    ("supervised", {"method": "supervised"}),
    ("abmil_momentum", {"momentum": 0.9}),
    ("abmil_dropout", {"dropout": "pcg", "seed": 5}),
]


def run_golden_case(out, name, over):
    conf = dict(BASE)
    conf.update(over)
    torch.manual_seed(0)
    masks = PcgMasks(conf["seed"]) if conf["dropout"] == "pcg" else TorchMasks()
    enc, tea, stu, enc_t = build(conf, D, masks, lambda: FeatProjecter(D), t0=0)
    train, test = [], []
    for b, (split, Y, labs) in enumerate(BAGS):
        il = [int(ch) for ch in labs]
        bag = (bag_features(b, il), torch.tensor(il, dtype=torch.long), Y)
        (train if split == "train" else test).append(bag)
    rs = np.random.RandomState(sum(map(ord, name)))
    order = ListOrder(rs, conf["epochs"], len(train), sum(x.shape[0] for x, _, _ in train))
    data = Data(train, test, conf["batch"], order)
    trace = Trace()
    opt = Optimizer(enc, tea, stu, data, conf, masks, trace, enc_t)
    opt.optimize()
    out.append("case %s %s dim=%d" % (name, " ".join("%s=%s" % kv for kv in conf.items()), D))
    for split, Y, labs in BAGS:
        out.append("bag %s %d %s" % (split, Y, labs))
    for e in range(conf["epochs"]):
        out.append("order teacher %d %s" % (e + 1, " ".join(map(str, order.t[e]))))
        out.append("order student %d %s" % (e + 1, " ".join(map(str, order.s[e]))))
    out.extend(trace.lines)
    out.append("end")


def golden(args):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = ["# generated by tests/golden/make_weno_golden.py with torch %s; do not edit" % torch.__version__]
    for name, over in CASES:
        if args.only and name not in args.only.split(","):
            continue
        t0 = time.time()
        run_golden_case(out, name, over)
        print("%s: %.1fs" % (name, time.time() - t0), file=sys.stderr)
    path = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "weno_golden.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d lines)" % (path, len(out)), file=sys.stderr)


# ---------------- curves ----------------

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
    sys.exit("make_weno_golden.py: %s/%s(.gz) not found" % (folder, stem))


def load_manifest(path, bindir):
    """mil-synth's bags, rebuilt from the IDX images: bag-info --instances
    gives each instance's image index (instance_x) and label"""
    rows = []
    with open(path) as f:
        head = None
        for line in f:
            if line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if head is None:
                head = cols
                continue
            rows.append(dict(zip(head, cols)))
    base = os.path.dirname(os.path.abspath(path))
    paths = [os.path.join(base, r["path"]) for r in rows]
    info = subprocess.run([os.path.join(bindir, "bag-info"), paths[0]], capture_output=True, text=True,
                          check=True).stdout
    # provenance "source=idx images DIR/train-images-idx3-ubyte.gz, labels ..."
    src = [ln for ln in info.splitlines() if "source=idx images " in ln]
    if not src:
        sys.exit("make_weno_golden.py: %s: not a bag of mil-synth's IDX images" % paths[0])
    idx_dir = os.path.dirname(src[0].split("source=idx images ", 1)[1].split(",")[0])
    inst = {}
    tsv = subprocess.run([os.path.join(bindir, "bag-info"), "-q", "--instances"] + paths,
                         capture_output=True, text=True, check=True).stdout
    for line in tsv.splitlines():
        c = line.split("\t")
        if c[0] == "bag_id":
            continue
        inst.setdefault(c[0], []).append((int(c[2]), float(c[5])))
    images = {s: read_idx(find_idx(idx_dir, s + "-images-idx3-ubyte")) for s in ("train", "t10k")}
    splits = {"train": [], "val": [], "test": []}
    for r in rows:
        xs = inst[r["bag_id"]]
        img = images["t10k" if r["split"] == "test" else "train"]
        x = torch.from_numpy(img[[i for i, _ in xs]].astype(np.float32) / 255.0).reshape(len(xs), 1, 28, 28)
        il = torch.tensor([int(l >= 0.5) for _, l in xs], dtype=torch.long)
        splits[r["split"]].append((x, il, int(r["label"])))
    return splits


def curves(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    splits = load_manifest(args.manifest, args.bin)
    conf = dict(BASE)
    conf.update({"epochs": args.epochs, "w": args.w, "lr": args.lr, "batch": args.batch, "dropout": "torch",
                 "hpm": "off", "head_dropout": 0.5})
    masks = TorchMasks()
    enc, tea, stu, enc_t = build(conf, 0, masks, MnistEncoder)
    data = Data(splits["train"], splits["test"], args.batch, TorchOrder())
    trace = Trace()
    opt = Optimizer(enc, tea, stu, data, conf, masks, trace, enc_t)
    cols = ["test_student_bag_auc", "test_teacher_bag_auc", "test_student_inst_auc", "test_teacher_inst_auc"]
    with open(args.log, "w") as f:
        f.write("epoch\t%s\tseconds\n" % "\t".join(cols))
        for epoch in range(args.epochs):
            t0 = time.time()
            opt.c["epochs"] = 1
            row = {}
            opt.optimize_teacher(epoch)
            row.update(opt.evaluate_teacher(epoch))
            opt.optimize_student(epoch)
            row.update(opt.evaluate_student(epoch))
            f.write("%d\t%s\t%.1f\n" % (epoch + 1, "\t".join("%.6f" % row[c] for c in cols), time.time() - t0))
            f.flush()
            print("curves seed %d epoch %d %s %.1fs" % (args.seed, epoch + 1,
                  " ".join("%.4f" % row[c] for c in cols), time.time() - t0), file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description="the authors' WENO loop in PyTorch: golden trajectories, learning curves")
    sub = ap.add_subparsers(dest="cmd")
    g = sub.add_parser("golden", help="write tests/golden/weno_golden.txt (the default)")
    g.add_argument("--only", help="comma-separated case names")
    g.add_argument("-o", "--out", help="output file")
    c = sub.add_parser("curves", help="train on a mil-synth manifest, log test AUCs per epoch")
    c.add_argument("-m", "--manifest", required=True)
    c.add_argument("--bin", default="build/bin", help="folder of bag-info")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--epochs", type=int, default=8)
    c.add_argument("--w", type=float, default=0.2)
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--batch", type=int, default=256)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--log", required=True)
    args = ap.parse_args()
    if args.cmd == "curves":
        curves(args)
    else:
        if args.cmd is None:
            args.only, args.out = None, None
        golden(args)


if __name__ == "__main__":
    main()
