"""PyTorch test oracle for gradviz (test-only code).

``torch_trace(expr, at, ...)`` evaluates ``expr`` with real PyTorch and returns
the value, the backward graph (nested dict + compact string + flat DAG), the
saved attributes of every node, the engine's node execution order and the
leaf gradients, all converted to strict-JSON-able Python objects
(nan/inf -> "NaN"/"Infinity"/"-Infinity").

Graph walks are iterative (explicit stacks) so deep graphs (thousands of
nodes) do not hit Python's recursion limit.
"""
from __future__ import annotations

import math
import sys
import warnings

import torch

__all__ = ["torch_trace", "torch_double_graphs", "torch_double_nodes", "make_namespace", "to_jsonable", "FUNCTIONS"]

FUNCTIONS = (
    "sin cos tan exp log sqrt tanh sigmoid relu abs sinh cosh asin acos atan "
    "log1p expm1 exp2 log2 log10 rsqrt erf square pow sum mean max min prod "
    "maximum minimum clamp reshape transpose softmax"
).split()

#: torch.nn.functional names gradviz also takes bare (gelu(x)), as after a from-import
FUNCTIONAL_BARE = (
    "leaky_relu elu gelu silu softplus log_softmax linear mse_loss l1_loss smooth_l1_loss huber_loss "
    "binary_cross_entropy binary_cross_entropy_with_logits nll_loss cross_entropy normalize"
).split()

# Tree expansion of a DAG with sharing can blow up; past this many emitted
# tree nodes "graph"/"graph_str" are None and "graph_truncated" is True.
# "nodes" (the flat DAG) is always complete.
TREE_LIMIT = 200_000


def _num(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, complex):
        return [_num(v.real), _num(v.imag)]
    return str(v)


def to_jsonable(v):
    """Tensor -> python number / nested list (int tensors stay int);
    tuples/lists/torch.Size -> lists; nan/inf -> strings; other -> str."""
    if isinstance(v, torch.Tensor):
        v = v.detach().tolist()
    if isinstance(v, (list, tuple)):
        # nesting depth = tensor rank / tuple depth: small, recursion is fine
        return [to_jsonable(e) for e in v]
    if isinstance(v, (torch.SymInt, torch.SymFloat)) if hasattr(torch, "SymInt") else False:
        v = int(v) if isinstance(v, torch.SymInt) else float(v)
    if isinstance(v, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
        return str(v)
    return _num(v)


def _type_desc(v):
    if isinstance(v, torch.Tensor):
        return "Tensor[%s,%s]" % (str(v.dtype).replace("torch.", ""), list(v.shape))
    if v is None:
        return "None"
    return type(v).__name__


#: the builtins an expression is evaluated with: none but ``__import__``, which PyTorch's C++ calls
#: (torch.where with a Python number imports from the caller's frame: KeyError without it)
EVAL_BUILTINS = {"__import__": __import__}


def make_namespace(tensors):
    ns = {name: getattr(torch, name) for name in FUNCTIONS}
    ns["torch"] = torch
    ns["F"] = torch.nn.functional  # as after `import torch.nn.functional as F`
    for name in FUNCTIONAL_BARE:  # as after `from torch.nn.functional import gelu, ...`
        ns.setdefault(name, getattr(torch.nn.functional, name))
    ns["pi"] = math.pi
    ns["e"] = math.e
    ns.update(tensors)
    return ns


def _signed_dims(val):
    """A saved dim as PyTorch holds it: its Python binding shows an int-array dim as unsigned
    (-1 reads back as 18446744073709551615)."""
    if isinstance(val, int) and not isinstance(val, bool) and val >= 1 << 63:
        return val - (1 << 64)
    if isinstance(val, tuple):
        return tuple(_signed_dims(d) for d in val)
    return val


def _saved(fn):
    saved, types = {}, {}
    for attr in sorted(dir(fn)):
        if not attr.startswith("_saved_"):
            continue
        try:
            val = getattr(fn, attr)
        except Exception as exc:  # e.g. freed after backward
            saved[attr] = "<error %s: %s>" % (type(exc).__name__, exc)
            types[attr] = "error"
            continue
        signed = "dim" in attr or attr in ("_saved_index", "_saved_start", "_saved_end",  # x[-1], x[-2:-1]
                                           "_saved_ignore_index")  # int64s the binding shows unsigned
        saved[attr] = to_jsonable(_signed_dims(val) if signed else val)
        types[attr] = _type_desc(val)
    return saved, types


def _is_acc(fn):
    return fn.name() == "AccumulateGrad" or hasattr(fn, "variable")


class _Namer:
    def __init__(self, leaves):
        self.by_id = {id(t): n for n, t in leaves.items()}

    def leaf(self, fn):
        try:
            return self.by_id.get(id(fn.variable), "?")
        except Exception:
            return "?"


def _collect_dag(root, namer):
    """Flat DAG in DFS preorder (first-reached order). Iterative."""
    index, nodes, order = {}, [], []
    stack = [root]
    while stack:
        fn = stack.pop()
        if fn in index:
            continue
        index[fn] = len(nodes)
        order.append(fn)
        entry = {"id": len(nodes), "name": fn.name()}
        if _is_acc(fn):
            entry["variable"] = namer.leaf(fn)
        else:
            entry["saved"], entry["saved_types"] = _saved(fn)
        nodes.append(entry)
        for child, _ in reversed(fn.next_functions):
            if child is not None and child not in index:
                stack.append(child)
    for fn, entry in zip(order, nodes):
        entry["next"] = [None if c is None else [index[c], nr] for c, nr in fn.next_functions]
    return nodes, index


def _tree(root, nodes, index):
    """Nested tree (shared nodes repeated). Iterative. None if too big."""
    def make(fn):
        e = nodes[index[fn]]
        if "variable" in e:
            return {"name": "AccumulateGrad", "variable": e["variable"], "next": []}
        return {"name": e["name"], "saved": e["saved"], "next": []}

    count = 1
    top = make(root)
    stack = [(root, top)]
    while stack:
        fn, d = stack.pop()
        if "variable" in d:
            continue
        for child, _ in fn.next_functions:
            if child is None:
                d["next"].append(None)
                continue
            count += 1
            if count > TREE_LIMIT:
                return None
            cd = make(child)
            d["next"].append(cd)
            stack.append((child, cd))
    return top


def _tree_str(root, nodes, index):
    """Compact 'Name[child, child]' string; AccumulateGrad(leaf); None for null."""
    out, count = [], 0
    stack = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        if item is None:
            out.append("None")
            continue
        count += 1
        if count > TREE_LIMIT:
            return None
        e = nodes[index[item]]
        if "variable" in e:
            out.append("AccumulateGrad(%s)" % e["variable"])
            continue
        out.append(e["name"] + "[")
        stack.append("]")
        kids = [c for c, _ in item.next_functions]
        for i in range(len(kids) - 1, -1, -1):
            stack.append(kids[i])
            if i:
                stack.append(", ")
    return "".join(out)


def torch_trace(expr, at, no_grad=(), dtype="float32", grad_output=None,
                with_tree=True):
    """Evaluate ``expr`` (a string, or a callable ns -> tensor) in PyTorch.

    Returns {"value", "shape", "dtype", "requires_grad", "grad_fn" (root node
    name or None), "graph" (nested), "graph_str", "graph_truncated", "nodes"
    (flat DAG: id/name/saved/saved_types|variable/next=[[id, input_nr]|None]),
    "exec_order" (node labels in the order the engine ran them; AccumulateGrad
    shown as "AccumulateGrad(name)"), "backward" (bool), "grads", "error"}.
    On an exception while evaluating: {"error": "Type: message"}.
    """
    tdtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    no_grad = set(no_grad)
    try:
        leaves = {
            name: (torch.tensor(val["int64"], dtype=torch.int64) if isinstance(val, dict)  # class targets
                   else torch.tensor(val, dtype=tdtype, requires_grad=name not in no_grad))
            for name, val in at.items()
        }
        ns = make_namespace(leaves)
        if callable(expr):  # expr(ns) -> tensor, for graphs too deep to write
            out = expr(ns)
        else:
            # deeply nested expressions (e.g. 5,000 chained ops) need a higher
            # recursion limit in CPython's compiler
            old = sys.getrecursionlimit()
            sys.setrecursionlimit(max(old, 10_000 + 4 * len(expr)))
            try:
                # PyTorch's bindings import lazily through the calling frame's builtins (Tensor.var,
                # the warnings of broadcast loss targets, torch.where with a number): the test's own
                # expressions get __import__
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = eval(expr, {"__builtins__": EVAL_BUILTINS}, ns)  # noqa: S307
            finally:
                sys.setrecursionlimit(old)
    except Exception as exc:
        return {"error": "%s: %s" % (type(exc).__name__, exc)}

    namer = _Namer(leaves)
    res = {"error": None, "grad_fn": None, "graph": None, "graph_str": None,
           "graph_truncated": False, "nodes": [], "exec_order": [],
           "backward": False}
    if not isinstance(out, torch.Tensor):
        res.update(value=to_jsonable(out), shape=None, dtype=type(out).__name__,
                   requires_grad=False, grads={n: None for n in leaves})
        return res

    res["value"] = to_jsonable(out)
    res["shape"] = list(out.shape)
    res["strides"] = list(out.stride())
    res["dtype"] = str(out.dtype).replace("torch.", "")
    res["requires_grad"] = bool(out.requires_grad)
    if out.requires_grad and out.is_leaf:
        res["leaf"] = namer.by_id.get(id(out), "?")

    root = out.grad_fn
    nodes_fn = []
    if root is not None:
        nodes, index = _collect_dag(root, namer)
        res["grad_fn"] = root.name()
        res["nodes"] = nodes
        if with_tree:
            res["graph"] = _tree(root, nodes, index)
            res["graph_str"] = _tree_str(root, nodes, index)
            res["graph_truncated"] = res["graph"] is None or res["graph_str"] is None
        nodes_fn = list(index)

    # backward (graph and saved values were read above, before buffers are freed)
    do_backward = out.requires_grad and (grad_output is not None or out.numel() == 1)
    if do_backward:
        order, handles = [], []
        for fn in nodes_fn:
            label = ("AccumulateGrad(%s)" % namer.leaf(fn)) if _is_acc(fn) else fn.name()
            handles.append(fn.register_prehook(lambda g, _l=label: order.append(_l)))
        try:
            if grad_output is None:
                out.backward()
            elif isinstance(grad_output, str) and grad_output == "ones":
                out.backward(torch.ones_like(out))
            else:
                out.backward(torch.tensor(grad_output, dtype=out.dtype))
            res["backward"] = True
        except Exception as exc:
            res["error"] = "%s: %s" % (type(exc).__name__, exc)
        finally:
            for h in handles:
                h.remove()
        res["exec_order"] = order
    res["grads"] = {n: (None if t.grad is None else to_jsonable(t.grad))
                    for n, t in leaves.items()}
    return res


def _grads_with_graph(expr, at, dtype, no_grad=()):
    """(leaves, name -> the gradient of ``expr`` computed with create_graph=True, or None), for each
    input that requires grad (not those in ``no_grad``, nor {"int64": ...} class targets)."""
    tdtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    leaves = {n: (torch.tensor(v["int64"], dtype=torch.int64) if isinstance(v, dict)
                  else torch.tensor(v, dtype=tdtype, requires_grad=n not in no_grad)) for n, v in at.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = eval(expr, {"__builtins__": EVAL_BUILTINS}, make_namespace(leaves))  # noqa: S307 - test oracle
    grads = {}
    for n, t in leaves.items():
        if not t.requires_grad:
            continue
        (g,) = torch.autograd.grad(out, [t], create_graph=True, retain_graph=True, allow_unused=True)
        grads[n] = g
    return leaves, grads


def torch_double_graphs(expr, at, dtype="float64", no_grad=()):
    """Input name -> PyTorch's double-backward graph of d(expr)/d(input), the grad_fn of the
    gradient ``torch.autograd.grad(..., create_graph=True)`` returns, as a ``Name[next, ...]``
    string ("None" when the gradient has no grad_fn), for each input that requires grad."""
    leaves, grads = _grads_with_graph(expr, at, dtype, no_grad)
    namer = _Namer(leaves)
    out = {}
    for n, g in grads.items():
        if g is None or g.grad_fn is None:
            out[n] = "None"
            continue
        nodes, index = _collect_dag(g.grad_fn, namer)
        out[n] = _tree_str(g.grad_fn, nodes, index)
    return out


def torch_double_nodes(expr, at, dtype="float64", no_grad=()):
    """Input name -> the flat DAG of that double-backward graph (as ``torch_trace``'s "nodes":
    name, saved values), in depth-first order; [] when the gradient has no grad_fn."""
    leaves, grads = _grads_with_graph(expr, at, dtype, no_grad)
    return {n: [] if g is None or g.grad_fn is None else _collect_dag(g.grad_fn, _Namer(leaves))[0]
            for n, g in grads.items()}
