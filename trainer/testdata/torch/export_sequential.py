"""Exports a PyTorch nn.Sequential to a thaw model folder (trainer/infer_test.go).

Usage: export_sequential.py OUT_DIR

Writes OUT_DIR/model.safetensors, the model's state_dict as PyTorch names
it ("0.weight", "1.running_mean", ...), and OUT_DIR/io.safetensors, a batch
"x" and the logits the model computes for it in eval mode. The config.json
that goes with it names only layer kinds, blocks and classes; thaw infers
every size from the weights. This is the worked example of the README.
"""

import os
import sys

import torch
import torch.nn as nn

from reference import write_safetensors

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1),  # 0
    nn.BatchNorm2d(4),              # 1
    nn.ReLU(),                      # 2
    nn.MaxPool2d(2),                # 3
    nn.Flatten(),                   # 4
    nn.Linear(4 * 4 * 4, 16),       # 5
    nn.ReLU(),                      # 6
    nn.Linear(16, 3),               # 7
)
# Move the BatchNorm statistics off their initial values.
model.train()
with torch.no_grad():
    for _ in range(3):
        model(torch.rand(8, 1, 8, 8))
model.eval()

out = sys.argv[1]
write_safetensors(os.path.join(out, "model.safetensors"), model.state_dict())
x = torch.rand(5, 1, 8, 8)
with torch.no_grad():
    logits = model(x)
write_safetensors(os.path.join(out, "io.safetensors"), {"x": x, "logits": logits})
