"""PyTorch side of thaw's optimizer comparison (trainer/torch_test.go).

Usage: reference.py FIXTURE OUTDIR

FIXTURE is a safetensors file with the initial weights of the MLP
784-256-128-10 (fc1, fc2, head; ReLU between) and 20 batches of data:
x [20, 16, 784] and y [20, 16]. For every run below, in float32 and in
float64, the script trains 20 steps, one per batch, writes the final weights
to OUTDIR/<run>-<dtype>.safetensors and prints the per-step losses as JSON:
{"<run>": {"float32": [...], "float64": [...]}, ...}.

Written for torch 1.13 without the safetensors package: the format is
parsed and written by hand (8-byte little-endian header length, JSON
header, packed little-endian data).
"""

import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F16": torch.float16, "F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}
LAYERS = ["fc1", "fc2", "head"]

# Each run: optimizer, its arguments, weight decay for weights (biases get
# none, as thaw's NoDecay), per-block LR multipliers, frozen blocks, and the
# clipping norm (None for no clipping). Keep in step with torch_test.go.
RUNS = {
    "sgd": dict(opt="sgd", lr=0.05, kw=dict(momentum=0.9, nesterov=False), wd=1e-4),
    "adamw": dict(opt="adamw", lr=1e-3, kw=dict(betas=(0.9, 0.999), eps=1e-8), wd=1e-2),
    "sgd-nesterov-frozen-clip": dict(
        opt="sgd", lr=0.05, kw=dict(momentum=0.9, nesterov=True), wd=1e-4,
        mult={"fc2": 0.5}, frozen=["fc1"], clip=0.8),
}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    buf = data[8 + n:]
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(buf[start:end]), dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header, chunks, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def train(fix, run, dtype):
    params = {}
    for layer in LAYERS:
        for kind in ("weight", "bias"):
            name = f"{layer}.{kind}"
            params[name] = fix[name].to(dtype).clone().requires_grad_(layer not in run.get("frozen", []))
    groups = []
    for layer in LAYERS:
        if layer in run.get("frozen", []):
            continue
        lr = run["lr"] * run.get("mult", {}).get(layer, 1.0)
        groups.append(dict(params=[params[layer + ".weight"]], lr=lr, weight_decay=run["wd"]))
        groups.append(dict(params=[params[layer + ".bias"]], lr=lr, weight_decay=0.0))
    if run["opt"] == "sgd":
        opt = torch.optim.SGD(groups, lr=run["lr"], foreach=False, **run["kw"])
    else:
        opt = torch.optim.AdamW(groups, lr=run["lr"], foreach=False, **run["kw"])
    trainable = [p for p in params.values() if p.requires_grad]
    xs, ys = fix["x"].to(dtype), fix["y"]
    losses = []
    for step in range(xs.shape[0]):
        h = xs[step]
        for i, layer in enumerate(LAYERS):
            h = F.linear(h, params[layer + ".weight"], params[layer + ".bias"])
            if i < len(LAYERS) - 1:
                h = F.relu(h)
        loss = F.cross_entropy(h, ys[step])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if run.get("clip") is not None:
            torch.nn.utils.clip_grad_norm_(trainable, run["clip"])
        opt.step()
        losses.append(loss.item())
    return losses, params


def main():
    fixture, outdir = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    fix = read_safetensors(fixture)
    result = {}
    for name, run in RUNS.items():
        result[name] = {}
        for dtype in (torch.float32, torch.float64):
            losses, params = train(fix, run, dtype)
            dname = str(dtype).removeprefix("torch.")
            result[name][dname] = losses
            write_safetensors(os.path.join(outdir, f"{name}-{dname}.safetensors"), params)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
