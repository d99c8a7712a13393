"""Loads a thaw model folder into torch.nn and runs it (trainer/torch_test.go).

Usage: load_model.py MODEL_DIR INPUTS OUT

MODEL_DIR holds config.json and model.safetensors as thaw's SaveModel
writes them. The script builds the network from config.json with torch.nn
modules registered under the layers' PyTorch names, loads the weights with
load_state_dict(strict=True), so a missing, extra or misshapen tensor is an
error, applies the config's normalisation, runs the batch "x" of INPUTS in
eval mode and writes the logits to OUT as "logits" (safetensors).

This is what a user does to take a fine-tuned model from thaw to PyTorch.
"""

import json
import sys

import torch
import torch.nn as nn

from reference import read_safetensors, write_safetensors


def build(cfg):
    root = nn.Module()
    steps = []  # (module or function) in forward order

    def register(path, module):
        parent = root
        parts = path.split(".")
        for p in parts[:-1]:
            if not hasattr(parent, p):
                parent.add_module(p, nn.Module())
            parent = getattr(parent, p)
        parent.add_module(parts[-1], module)
        steps.append(module)

    for block in cfg["blocks"]:
        for l in block["layers"]:
            t = l["type"]
            if t == "linear":
                register(l["name"], nn.Linear(l["in_features"], l["out_features"]))
            elif t == "conv2d":
                register(l["name"], nn.Conv2d(l["in_channels"], l["out_channels"], l["kernel_size"],
                                              stride=l.get("stride") or 1, padding=l.get("padding", 0)))
            elif t == "batchnorm1d":
                register(l["name"], nn.BatchNorm1d(l["num_features"], eps=l.get("eps") or 1e-5,
                                                   momentum=l.get("momentum") or 0.1))
            elif t == "batchnorm2d":
                register(l["name"], nn.BatchNorm2d(l["num_features"], eps=l.get("eps") or 1e-5,
                                                   momentum=l.get("momentum") or 0.1))
            elif t == "maxpool2d":
                k = l["kernel_size"]
                steps.append(nn.MaxPool2d(k, stride=l.get("stride") or k, padding=l.get("padding", 0)))
            elif t == "relu":
                steps.append(nn.ReLU())
            elif t == "gelu":
                steps.append(nn.GELU())
            elif t == "flatten":
                steps.append(nn.Flatten())
            elif t == "dropout":
                steps.append(nn.Dropout(l.get("p", 0)))
            else:
                raise SystemExit(f"unknown layer type {t!r}")
    return root, steps


def main():
    model_dir, inputs, out = sys.argv[1:4]
    cfg = json.load(open(f"{model_dir}/config.json"))
    root, steps = build(cfg)
    state = read_safetensors(f"{model_dir}/model.safetensors")
    root.load_state_dict(state, strict=True)
    root.eval()
    for s in steps:  # the unnamed ones (dropout) are not under root
        s.eval()
    x = read_safetensors(inputs)["x"].float()
    norm = cfg.get("normalize")
    if norm:
        shape = [1, -1] + [1] * (x.dim() - 2)
        mean = torch.tensor(norm["mean"], dtype=x.dtype).reshape(shape)
        std = torch.tensor(norm["std"], dtype=x.dtype).reshape(shape)
        x = (x - mean) / std
    with torch.no_grad():
        for s in steps:
            x = s(x)
    write_safetensors(out, {"logits": x})


if __name__ == "__main__":
    main()
