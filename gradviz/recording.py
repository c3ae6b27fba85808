"""``with gradviz.record() as rec:`` around a forward pass: what the grad_fn graph alone does not hold.

A backward graph keeps what its gradient rules need, not every intermediate's value, and
nothing of the modules that made it. While recording, a torch function mode sees every torch
function and tensor method called (outside any other's handler) and keeps a copy of each output
that has a grad_fn (its value at that moment: a later in-place op makes a new grad_fn of its
own), and global module hooks keep the stack of modules running, so each grad_fn is known by
the path of the module whose forward made it (``encoder.layers.0.attn``, relative to the
outermost module called; its own ops are named by its class). Then ``rec.graph(loss)`` (or
``gradviz.from_torch(loss, record=rec)``) draws the graph with those values, grouped by module.

Values made inside a composite function (the log_softmax inside cross_entropy) are not seen:
their nodes show no value, as without recording.
"""

from __future__ import annotations

from .torch_import import from_torch, torch_module

__all__ = ["record", "Recording"]


def record(model=None, values: bool = True) -> "Recording":
    """A :class:`Recording` to use as ``with gradviz.record() as rec:`` around a forward pass.

    ``model``: the module whose ``named_modules()`` name the paths (default: the outermost
    module called while recording). ``values=False`` keeps module paths only (no copies)."""
    return Recording(model, values)


class Recording:
    """What a forward pass showed while recorded: each grad_fn's output value and module path."""

    def __init__(self, model=None, values: bool = True):
        self.model = model
        self.keep_values = values
        self.values: dict = {}  # grad_fn -> a copy of its (first) output, as it was made
        self.modules: dict = {}  # grad_fn -> the path of the module running when it was made
        self._names: dict = {}  # id(module) -> its path
        self._alive: list = []  # the modules named (their ids stay theirs)
        self._stack: list = []  # paths of the modules whose forward is running
        self._handles: list = []
        self._mode = None
        self.torch = None

    # --- recording -------------------------------------------------------------------------
    def __enter__(self) -> "Recording":
        torch = self.torch = torch_module()
        if self.model is not None:
            self._name_modules(self.model)
        hooks = torch.nn.modules.module
        self._handles = [hooks.register_module_forward_pre_hook(self._enter_module),
                         hooks.register_module_forward_hook(self._leave_module)]
        self._mode = _function_mode(torch, self)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._mode.__exit__(*exc)
        finally:
            for h in self._handles:
                h.remove()
            self._handles = []
            self._stack = []

    def _name_modules(self, root) -> None:
        for name, m in root.named_modules():
            if id(m) not in self._names:
                self._names[id(m)] = name or type(root).__name__
                self._alive.append(m)

    def _enter_module(self, module, args) -> None:
        path = self._names.get(id(module))
        if path is None:
            if not self._stack:  # the outermost module called names the paths below it
                self._name_modules(module)
                path = self._names[id(module)]
            else:  # a module made on the fly inside another: under its parent, by its class
                path = f"{self._stack[-1]}.{type(module).__name__}"
        self._stack.append(path)

    def _leave_module(self, module, args, output) -> None:
        if self._stack:
            self._stack.pop()

    def capture(self, out) -> None:
        """Keep what a torch function returned (a tensor, or a tuple or list of them)."""
        torch = self.torch
        items = out if isinstance(out, (tuple, list)) else (out,)
        module = self._stack[-1] if self._stack else None
        for t in items:
            if not isinstance(t, torch.Tensor):
                continue
            fn = t.grad_fn
            if fn is None or fn in self.modules:
                continue
            self.modules[fn] = module
            if self.keep_values and t.output_nr == 0:
                self.values[fn] = t.detach().clone()

    # --- reading ---------------------------------------------------------------------------
    def graph(self, output, params=None, inputs=None, **options):
        """``gradviz.from_torch(output, ...)`` with what was recorded (params default to the model)."""
        if params is None and self.model is not None:
            params = self.model
        return from_torch(output, params=params, inputs=inputs, record=self, **options)

    def value_of(self, reader, fn):
        """(value as the tape holds it, shape) of ``fn``'s output, or None when not recorded."""
        t = self.values.get(fn)
        if t is None:
            return None
        return reader.tape_value(t), tuple(t.shape)

    def annotate(self, reader) -> None:
        """Put each recorded module path on the reader's imported functions."""
        g = reader.graph
        for fn, i in reader.entry.items():
            entry = g.imported.get(i)
            if entry is not None:
                entry.module = self.modules.get(fn)
        # A node the mode never saw was made inside a composite function (weight.t() inside
        # F.linear): it belongs to the module of the call that used it (its first consumer).
        seen = set(self.modules)
        for i in g.order():
            entry = g.imported.get(i)
            if entry is None:
                continue
            for j in entry.next_functions:
                child = g.imported.get(j) if j is not None else None
                if child is not None and child.module is None and reader.nodes_by_entry[j] not in seen:
                    child.module = entry.module
                    seen.add(reader.nodes_by_entry[j])


def _function_mode(torch, recording: Recording):
    """A TorchFunctionMode that hands every result to ``recording`` (a class made here: torch is
    imported only when recording starts)."""

    class _Recorder(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            recording.capture(out)
            return out

    return _Recorder()
