"""Regenerate every sample: its SVG and PNG, its terminal view (.txt) and samples/README.md.

    python samples/make_samples.py

Each sample is one gradviz command; this script runs exactly that command (with
``-o NAME.svg``, then again for the terminal text), so the pictures, the text and
the commands listed in the README never drift apart. SVG and PNG need nothing but pip.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (file name, title, what it shows, gradviz arguments)
SAMPLES = [
    ("x_squared", "y = x² at x = 2", "The lecture's first example: y = 4 and dy/dx = 2x = 4.",
     ["x**2", "--at", "x=2"]),
    ("quadratic", "y = x² + 2x + 1 at x = 2", "The lecture's second example: y = 9, dy/dx = 2x + 2 = 6; "
     "x reaches its AccumulateGrad twice (4 from x², 2 from 2x).",
     ["x**2 + 2*x + 1", "--at", "x=2"]),
    ("partial_uv", "f = uv + u² at u = 1, v = 2", "The lecture's partial derivatives: f = 3, "
     "∂f/∂u = v + 2u = 4, ∂f/∂v = u = 1.",
     ["u*v + u**2", "--at", "u=1,v=2"]),
    ("neuron", "a neuron: sigmoid(w·x + b)", "One sigmoid neuron; SigmoidBackward0 saves its result "
     "and sends σ(1 − σ) = 0.25 on.",
     ["sigmoid(w*x + b)", "--at", "w=0.5,x=2,b=-1"]),
    ("leaf_twice", "a leaf used twice: x·x", "MulBackward0 points at the same AccumulateGrad twice; "
     "x.grad = 3 + 3 = 6.",
     ["x*x", "--at", "x=3"]),
    ("no_grad_input", "an input that needs no grad", "x is data (--no-grad x): its next_functions entry "
     "is None, it is drawn dimmed and no gradient flows to it.",
     ["w*x + b", "--at", "w=2,x=3,b=1", "--no-grad", "x"]),
    ("lecture_tensors", "the lecture's picture: y = x² with every tensor (--tensors all)",
     "As the lecture's slide shows x and y: each tensor is a node with data, grad, grad_fn, is_leaf and "
     "requires_grad, beside the backward function that is its grad_fn (dotted). y.grad is None: PyTorch "
     "keeps .grad on leaves only.",
     ["x**2", "--at", "x=2", "--tensors", "all"]),
    ("partial_uv_tensors", "f = uv + u² with every tensor", "The intermediates u*v and u**2 are tensors too, "
     "each next to its grad_fn; --retain-grad would fill in their grad.",
     ["u*v + u**2", "--at", "u=1,v=2", "--tensors", "all"]),
    ("constant", "a constant where it enters: 2*x + x**2", "Each backward function says which part of the "
     "expression it differentiates; the Python number 2 is drawn where it enters MulBackward0, as its "
     "argument `other` (PyTorch saves it as `other = 2`). --steps numbers each arrow by the step of the "
     "backward pass that sent it.",
     ["2*x + x**2", "--at", "x=2", "--steps"]),
    ("layer", "a small layer: mean(sigmoid(W @ x + b))", "Vectors and a matrix: MvBackward0 sends a "
     "2×3 gradient to W (shape of W) and a vector to x; MeanBackward0 divides by the 2 elements.",
     ["mean(sigmoid(W @ x + b))", "--at", "W=[[0.1,-0.2,0.3],[0.4,0.5,-0.6]],x=[1,2,3],b=[0.1,-0.1]"]),
    ("mlp", "a two-layer network: mean(tanh(W2 @ tanh(W1 @ x + b1) + b2))", "A 4×3 and a 2×4 weight matrix, "
     "printed whole as PyTorch prints them; the long chain is folded into columns side by side (the first layer, the "
     "second, the mean), each starting at the top with its inputs, an arrow from the foot of one to the head "
     "of the next, to keep a slide's proportions.",
     ["mean(tanh(W2 @ tanh(W1 @ x + b1) + b2))", "--at",
      "W1=[[0.1,-0.2,0.3],[0.4,0.5,-0.6],[0.7,-0.8,0.9],[-0.1,0.2,-0.3]],x=[1,2,3],"
      "b1=[0.1,-0.1,0.2,-0.2],W2=[[0.5,-0.5,0.25,-0.25],[1,2,3,4]],b2=[0.01,-0.01]"]),
    ("double_backward", "second order: the graph of each gradient and the Hessian", "--order 2 --graph double: "
     "backward with create_graph=True makes each gradient a graph of its own (one box per input); backward "
     "from ∂f/∂u leaves a row of the Hessian in the leaves' grad. The Hessian is in the box.",
     ["u*v + u**2", "--at", "u=1,v=2", "--order", "2", "--graph", "double"]),
]


def run(args: list[str], env: dict) -> bytes:
    proc = subprocess.run([sys.executable, "-m", "gradviz", *args], capture_output=True, env=env, cwd=HERE)
    if proc.returncode != 0:
        sys.exit(f"gradviz {shlex.join(args)} failed:\n{proc.stderr.decode()}")
    return proc.stdout


def main() -> None:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="80")
    readme = [
        "# Samples",
        "",
        "Each picture is what one `gradviz` command writes; `python samples/make_samples.py` makes them",
        "all again (plus a PNG of each, drawn from the same SVG with the same font, and the terminal",
        "view of each, in the `.txt` beside it).",
        "",
        "How to read them: inputs come first (on the left, or on top: gradviz picks the direction that keeps",
        "a slide's proportions, and folds a long chain into columns side by side; `--rankdir LR|TB` chooses),",
        "the output (green) last. Blue boxes are leaf",
        "tensors with their `data` and `grad`; orange boxes are backward functions, the part of the",
        "expression each differentiates and the values it saved; grey boxes are `AccumulateGrad`. Every red",
        "arrow points the way the gradient flows during `backward()` and carries its value; `+= g` is what",
        "AccumulateGrad adds into the leaf's `.grad`. Numbers are printed as PyTorch prints them.",
        "",
    ]
    for name, title, about, args in SAMPLES:
        run([*args, "-o", f"{name}.svg"], env)
        run([*args, "-o", f"{name}.png"], env)
        (HERE / f"{name}.txt").write_bytes(run(args, env))
        readme += [
            f"## {title}",
            "",
            about,
            "",
            "```",
            f"gradviz {shlex.join(args)} -o {name}.svg",
            "```",
            "",
            f"![{title}]({name}.svg)",
            "",
            f"PNG: [{name}.png]({name}.png) (`-o {name}.png`) · terminal view: [{name}.txt]({name}.txt)",
            "",
        ]
        print(f"wrote samples/{name}.svg, {name}.png and {name}.txt")
    (HERE / "README.md").write_text("\n".join(readme), encoding="utf-8")
    print("wrote samples/README.md")


if __name__ == "__main__":
    main()
