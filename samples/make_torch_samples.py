"""Regenerate the samples of real PyTorch graphs (needs torch): their SVG and PNG.

    python samples/make_torch_samples.py

* ``torch_encoder``: ``nn.TransformerEncoder`` of 6 layers, recorded (module paths): layers.5 drawn
  in its module's cluster, ``layers.1-4`` one collapsed block, then layers.0 (whose input needs no
  grad, so it is not a repetition).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import gradviz  # noqa: E402


def encoder():
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 6, enable_nested_tensor=False)

        def forward(self, x):
            return self.encoder(x)

    model = Model()
    with gradviz.record(model) as rec:
        loss = model(torch.randn(1, 2, 4)).pow(2).mean()
    return rec.graph(loss), 200


def main() -> None:
    for name, make in (("torch_encoder", encoder),):
        t, max_nodes = make()
        with gradviz.printoptions(threshold=4, edgeitems=1, precision=3):
            t.save(HERE / f"{name}.svg", max_nodes=max_nodes)
            t.save(HERE / f"{name}.png", max_nodes=max_nodes, scale=0.5)
        print(name, t.graph.function_count(), "functions")


if __name__ == "__main__":
    main()
