"""The whole few-shot job in PyTorch: the counterpart of

    thaw train --model digits-cnn --data digits-5to9 --plan gradual \
        --shots 20 --epochs 10 --seed 1

Same network and pretrained weights (the zoo's digits-cnn safetensors), same
data (the embedded MNIST files), same split sizes (a stratified fifth of
digits-5to9's training split held out for validation, 20 shots per class
from the rest), same plan (4 stages of at most 10 epochs of 4 batches of at
most 32: 160 steps if no stage stops early), optimizer (AdamW, betas
0.7/0.99, eps 1e-8, decoupled weight decay 0.01 on weights, none on biases;
a block's state kept across stages), schedule (slanted triangular over the
stage's planned length, cut 0.1, ratio 32, discriminative factor 2.6) and
loss (cross-entropy with labels smoothed by 0.1, F.cross_entropy's
label_smoothing, in training and in validation alike: the validation loss
that early stopping and the best weights go by is the smoothed one).

Evaluation and early stopping are thaw's presets' (trainer/run.go,
trainer/preset.go): the forgetting gauge at the start; within a stage of S
steps, validation and the gauge every max(steps per epoch, ceil(S/20))
steps from the stage's start (here every epoch, 4 steps) and at its last
step; a stage ends early at an evaluation short of its last step that is
the 3rd in a row without a validation loss lower than the stage's own best
(which starts at +inf with each stage; the evaluation at the stage's last
step stops nothing). A stage that stops early is not evaluated again (its
last evaluation measured the weights it ends with), and the next stage
starts where it was planned to: its schedule and batch order are those of
its planned steps. The weights of the run's lowest validation loss are
kept, whatever stage they come from. At the end: the last evaluation's
validation figures (it measured the final weights), the gauge on the
whole source set, and, as thaw train does, the kept weights scored on the
task's test split (digits 5-9 of MNIST's test split; --no-test leaves it
out).

The gauge is the source task's test set (digits 0-4 of MNIST's test
split) through the current body and the base model's original head: at
each evaluation a fixed stratified subset of about --gauge-sample samples,
as thaw's Spec.GaugeSample, the whole set at the start and the end (0 for
the whole set every time). As thaw, it gives the last value on the same set
without a pass while the body has not changed since (the first stage trains
the head alone), so both make the same passes for the same stops. The
samples drawn differ from thaw's (another random generator), so a stage may
stop at another step; their numbers do not.

    /usr/bin/python3 torch_job.py [--threads N] [--root REPO]

Prints one JSON object: the steps run, each stage's planned start and
where it ended (start_step, end_step, steps run, validations, whether it
stopped early, its best validation loss, as thaw's --json stages), the
number of validation and gauge passes (the gauge's at the start and end
included), the final and best validation
loss and accuracy, the gauge before and after, the test accuracy, and the
CPU and wall seconds of start-up, training, validation, gauge and test.
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def clocks():
    t = os.times()
    return t.user + t.system, time.perf_counter()


class Timer:
    def __init__(self):
        self.cpu, self.wall = {}, {}

    def add(self, name, start):
        c, w = clocks()
        self.cpu[name] = self.cpu.get(name, 0.0) + c - start[0]
        self.wall[name] = self.wall.get(name, 0.0) + w - start[1]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def task(root, split, classes):
    x = read_idx(f"{root}/assets/data/mnist-{split}-images-idx3-ubyte.gz")
    y = read_idx(f"{root}/assets/data/mnist-{split}-labels-idx1-ubyte.gz")
    keep = np.isin(y, classes)
    x = torch.from_numpy(x[keep].astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(np.searchsorted(classes, y[keep]).astype(np.int64))
    return x, y


def read_safetensors(path):
    with open(path, "rb") as f:
        n, = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", t
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").copy()).reshape(t["shape"])
    return out


class CNN(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = mean, std
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 5))

    def body(self, x):
        h = self.features((x - self.mean) / self.std).flatten(1)
        return self.classifier[1](self.classifier[0](h))

    def forward(self, x):
        return self.classifier[2](self.body(x))


def stlr(t, T, peak, cut_frac=0.1, ratio=32):
    """ULMFiT's slanted triangular rate, as thaw's Schedule.LR computes it."""
    cut = int(T * cut_frac)
    if cut < 1:
        p = 1 - t / T
    elif t < cut:
        p = t / cut
    else:
        p = 1 - (t - cut) / (cut * (1 / cut_frac - 1))
    return peak * (1 + max(p, 0) * (ratio - 1)) / ratio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    ap.add_argument("--shots", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gauge-sample", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-2, help="peak rate: the gradual preset's default")
    ap.add_argument("--label-smoothing", type=float, default=0.1, help="the presets' epsilon, in training and validation")
    ap.add_argument("--patience", type=int, default=3, help="evaluations without a lower validation loss that end a stage")
    ap.add_argument("--evals", type=int, default=20, help="evaluations per stage, at most one an epoch")
    ap.add_argument("--no-test", action="store_true", help="do not score the best weights on the test split")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = np.random.default_rng(args.seed)
    tm = Timer()

    # Start-up: the data, the split, the shots, the model with a new head.
    t0 = clocks()
    x, y = task(args.root, "train", [5, 6, 7, 8, 9])
    src_x, src_y = task(args.root, "test", [0, 1, 2, 3, 4])
    tr, va = [], []
    for c in range(5):
        idx = np.flatnonzero(y.numpy() == c)
        gen.shuffle(idx)
        nv = int(round(0.2 * len(idx)))
        va += list(idx[:nv])
        rest = idx[nv:]
        gen.shuffle(rest)
        tr += list(rest[:args.shots])
    tr, va = np.sort(tr), np.sort(va)
    train_x, train_y, val_x, val_y = x[tr], y[tr], x[va], y[va]
    cfg = json.load(open(f"{args.root}/assets/zoo/digits-cnn/config.json"))
    model = CNN(cfg["normalize"]["mean"][0], cfg["normalize"]["std"][0])
    w = read_safetensors(f"{args.root}/assets/zoo/digits-cnn/model.safetensors")
    source_head = nn.Linear(64, 5)
    source_head.load_state_dict({"weight": w["classifier.2.weight"], "bias": w["classifier.2.bias"]})
    model.load_state_dict({k: v for k, v in w.items() if not k.startswith("classifier.2.")}, strict=False)
    blocks = [  # input to output, as thaw's blocks
        [model.features[0]], [model.features[3]], [model.classifier[0]], [model.classifier[2]]]
    tm.add("startup", t0)

    def evaluate(xs, ys, head=None, smoothing=0.0):
        model.eval()
        loss, correct = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(ys), 256):
                xb, yb = xs[i:i + 256], ys[i:i + 256]
                logits = head(model.body(xb)) if head else model(xb)
                loss += F.cross_entropy(logits, yb, reduction="sum", label_smoothing=smoothing).item()
                correct += (logits.argmax(1) == yb).sum().item()
        return loss / len(ys), correct / len(ys)

    def validation():
        t = clocks()
        r = evaluate(val_x, val_y, smoothing=args.label_smoothing)
        tm.add("validation", t)
        return r

    live_x, live_y = src_x, src_y
    if 0 < args.gauge_sample < len(src_y):
        frac, keep = args.gauge_sample / len(src_y), []
        for c in range(5):
            idx = np.flatnonzero(src_y.numpy() == c)
            np.random.default_rng(0).shuffle(idx)
            keep += list(idx[:int(round(frac * len(idx)))])
        keep = np.sort(keep)
        live_x, live_y = src_x[keep], src_y[keep]

    body = {"version": 0}  # counts the steps that changed the body
    gauged = {}

    def gauge(full=False):
        """The gauge on the whole set or the live subset; a set measured at the body's current version gives that
        value again, as thaw's does."""
        g = gauged.get(full)
        if g and g[0] == body["version"]:
            return g[1]
        t = clocks()
        r = evaluate(src_x, src_y, source_head)[1] if full else evaluate(live_x, live_y, source_head)[1]
        tm.add("gauge", t)
        counts["gauge"] += 1
        gauged[full] = (body["version"], r)
        return r

    counts = {"validation": 0, "gauge": 0}
    gauge_before = gauge(full=True)
    groups = []
    for b in blocks:
        ps = [p for layer in b for p in layer.parameters()]
        groups.append({"params": [p for p in ps if p.dim() > 1], "weight_decay": 0.01})
        groups.append({"params": [p for p in ps if p.dim() <= 1], "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.7, 0.99), eps=1e-8)
    n = len(train_y)
    spe = (n + 31) // 32
    if n % 32 == 1 and spe > 1:
        spe -= 1
    stage_len = args.epochs * spe
    every = max(spe, -(-stage_len // args.evals))  # thaw's ResolvedStage.EvalInterval
    best_loss, best_acc, best_step, best = float("inf"), float("nan"), -1, None
    stages = []
    epoch, run = -1, 0

    def evaluation(step, sr):
        """Validation and gauge; keeps the best weights; returns the evaluations in a row without a better
        validation loss within the stage."""
        nonlocal best_loss, best_acc, best_step, best, last
        vl, acc = validation()
        gauge()
        counts["validation"] += 1
        sr["validations"] += 1
        last = (vl, acc)
        if vl < sr["best_val_loss"]:
            sr["best_val_loss"], sr["since_best"] = vl, 0
        else:
            sr["since_best"] += 1
        if vl < best_loss:
            best_loss, best_acc, best_step = vl, acc, step
            best = {k: v.clone() for k, v in model.state_dict().items()}
        return sr["since_best"]

    last = None
    top = len(blocks) - 1
    for stage in range(len(blocks)):
        for bi, b in enumerate(blocks):
            on = bi >= top - stage
            for layer in b:
                for p in layer.parameters():
                    p.requires_grad_(on)
                    if not on:
                        p.grad = None
        mult = [2.6 ** -(top - bi) if bi >= top - stage else 0.0 for bi in range(len(blocks))]
        start = stage * stage_len  # the planned start, as thaw's steps count
        sr = {"start_step": start, "end_step": start, "steps": 0, "validations": 0, "stopped_early": False,
              "best_val_loss": float("inf"), "since_best": 0}
        stages.append(sr)
        for t in range(stage_len):
            step = start + t
            tt = clocks()
            if step // spe != epoch:
                epoch = step // spe
                perm = torch.from_numpy(gen.permutation(n))
                batches = [perm[i * 32:(i + 1) * 32] for i in range(spe)]
                batches[-1] = perm[(spe - 1) * 32:]
            idx = batches[step % spe]
            lr = stlr(t, stage_len, args.lr)
            for gi, g in enumerate(opt.param_groups):
                g["lr"] = lr * mult[gi // 2]
            model.train()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx], label_smoothing=args.label_smoothing)
            loss.backward()
            opt.step()
            run += 1
            body["version"] += stage > 0
            sr["steps"] += 1
            sr["end_step"] = step + 1
            tm.add("training", tt)
            if t + 1 == stage_len:
                evaluation(step + 1, sr)  # the stage's end: it stops nothing
            elif (t + 1) % every == 0 and evaluation(step + 1, sr) >= args.patience:
                sr["stopped_early"] = True
                break
        del sr["since_best"]
    # The last evaluation measured the final weights: its figures are the
    # final ones (thaw keeps them rather than measure the same weights again).
    final_loss, final_acc = last
    gauge_after = gauge(full=True)
    test_acc = None
    if not args.no_test:
        # As thaw train: the best weights on the task's test split.
        t = clocks()
        test_x, test_y = task(args.root, "test", [5, 6, 7, 8, 9])
        model.load_state_dict(best)
        test_acc = evaluate(test_x, test_y)[1]
        tm.add("test", t)
    c, w = clocks()
    print(json.dumps({
        "torch": torch.__version__, "threads": args.threads, "steps": run, "total_steps": len(blocks) * stage_len,
        "eval_every": every, "stages": stages, "validations": counts["validation"], "gauge_passes": counts["gauge"],
        "train_samples": n, "val_samples": len(val_y), "source_samples": len(src_y), "gauge_live_samples": len(live_y),
        "final_val_loss": final_loss, "final_val_acc": final_acc, "best_val_loss": best_loss, "best_val_acc": best_acc,
        "best_step": best_step,
        "source_acc_before": gauge_before, "source_acc_after": gauge_after, "test_acc": test_acc,
        "cpu": tm.cpu, "wall": tm.wall, "cpu_total": c, "wall_total": w - t0[1],
    }))


if __name__ == "__main__":
    main()
