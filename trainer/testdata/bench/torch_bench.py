"""Training-step throughput of PyTorch on the networks thaw benchmarks.

Measures samples/s of one SGD training step (forward, cross-entropy,
backward, update) in float32 for the MLP 784-256-128-10 at batch 128 and the
CNN conv5x5(8)-pool-conv5x5(16)-pool-fc64-fc10 on 28x28 at batch 64, each
with nothing frozen and with the first block frozen. Prints one JSON object.

    /usr/bin/python3 torch_bench.py [--threads N] [--seconds S]
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def mlp():
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(),
        nn.Linear(64, 10))


def measure(model, shape, batch, freeze_first, seconds):
    torch.manual_seed(0)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    if freeze_first:
        model[0].weight.requires_grad_(False)
        model[0].bias.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    # Median of five timed windows, each at least seconds/5 long.
    rates = []
    for _ in range(5):
        n, t0 = 0, time.perf_counter()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= seconds / 5:
                break
        rates.append(n * batch / dt)
    rates.sort()
    return rates[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {"torch": torch.__version__, "threads": args.threads}
    out["mlp"] = measure(mlp(), (784,), 128, False, args.seconds)
    out["mlp_frozen"] = measure(mlp(), (784,), 128, True, args.seconds)
    out["cnn"] = measure(cnn(), (1, 28, 28), 64, False, args.seconds)
    out["cnn_frozen"] = measure(cnn(), (1, 28, 28), 64, True, args.seconds)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
