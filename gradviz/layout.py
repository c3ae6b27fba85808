"""Memory layout: each tensor's strides (in elements) as PyTorch computes them.

PyTorch decides from strides whether ``reshape`` is a view (ViewBackward0), an alias of a
non-contiguous tensor (ReshapeAliasBackward0) or a copy (CloneBackward0 + UnsafeViewBackward0),
whether ``view`` is refused, whether ``contiguous()`` copies, which formula mm's backward uses,
and what MmBackward0 saves as ``self_sym_strides``. The rules here are ATen's:

* views compute their strides from their input's (``permute``, ``transpose``, ``t``,
  ``unsqueeze``, ``squeeze``, ``expand``, and ``view``/``reshape`` through :func:`view_strides`,
  ATen's ``computeStride``);
* elementwise results follow TensorIterator (:func:`elementwise_strides`): the output takes
  the layout of its operands' strides (``M.T + K`` has strides (1, 3));
* reductions, softmax, matrix products and copies (``clone`` of ``contiguous()``/``reshape``)
  are contiguous.

The graph stores strides only for tensors that are not contiguous-by-formula
(:func:`contiguous_strides`), so numbers and contiguous tensors pay nothing.
"""

from __future__ import annotations


def contiguous_strides(shape) -> tuple:
    """The strides of a contiguous (row-major) tensor of ``shape`` (a size 0 counts as 1)."""
    strides = [0] * len(shape)
    acc = 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc
        acc *= max(shape[d], 1)
    return tuple(strides)


def is_contiguous(shape, strides) -> bool:
    """``Tensor.is_contiguous()``: row-major, ignoring dims of size 1 (and any empty tensor)."""
    expected = 1
    for size, stride in zip(reversed(shape), reversed(strides)):
        if size == 0:
            return True
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


def is_non_overlapping_and_dense(shape, strides) -> bool:
    """ATen's ``is_non_overlapping_and_dense``: some permutation of the dims is contiguous."""
    if len(shape) == 1:
        return shape[0] < 2 or strides[0] == 1
    dims = sorted(range(len(shape)), key=lambda d: (shape[d] < 2, strides[d] if shape[d] >= 2 else 0))
    required = 1
    for d in dims:
        if shape[d] < 2:
            return True
        if strides[d] != required:
            return False
        required *= shape[d]
    return True


def view_strides(shape, strides, target) -> tuple | None:
    """ATen's ``computeStride``: the strides of ``target`` as a view of a tensor of ``shape`` and
    ``strides``, or None when no view can have that shape (each run of merged dims must be
    contiguous in itself)."""
    shape, strides, target = tuple(shape), tuple(strides), tuple(target)
    if not shape:
        return (1,) * len(target)
    numel = 1
    for s in shape:
        numel *= s
    if numel == 0:
        if shape == target:
            return strides
        return contiguous_strides(target)
    out = [0] * len(target)
    view_d = len(target) - 1
    chunk_base_stride = strides[-1]
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[tensor_d]
        if tensor_d == 0 or (shape[tensor_d - 1] != 1 and strides[tensor_d - 1] != tensor_numel * chunk_base_stride):
            while view_d >= 0 and (view_numel < tensor_numel or target[view_d] == 1):
                out[view_d] = view_numel * chunk_base_stride
                view_numel *= target[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(out)


def elementwise_strides(operands, shape) -> tuple:
    """TensorIterator's output strides for an elementwise op: ``operands`` are (shape, strides)
    pairs, ``shape`` the broadcast result's. Operands of the result's shape that are all
    contiguous give a contiguous result, all alike dense ones their strides; otherwise the dims
    are ordered by the operands' strides (broadcast dims ignored), as ``reorder_dimensions``."""
    shape = tuple(shape)
    if all(tuple(s) == shape for s, _ in operands):
        if all(is_contiguous(s, st) for s, st in operands):
            return contiguous_strides(shape)
        first = tuple(operands[0][1])
        if all(is_non_overlapping_and_dense(s, st) and tuple(st) == first for s, st in operands):
            return first
    ndim = len(shape)
    broadcast = []
    for s, st in operands:
        offset = ndim - len(s)
        row = [0] * ndim
        for i, (size, stride) in enumerate(zip(s, st)):
            row[offset + i] = 0 if size == 1 and shape[offset + i] != 1 else stride
        broadcast.append(row)

    def should_swap(d0, d1):
        for row in broadcast:
            s0, s1 = row[d0], row[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 < s1:
                return -1
            if s0 > s1:
                return 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(ndim - 1, -1, -1))  # fastest-moving dim first
    for i in range(1, ndim):
        dim1 = i
        for dim0 in range(i - 1, -1, -1):
            comparison = should_swap(perm[dim0], perm[dim1])
            if comparison > 0:
                perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
                dim1 = dim0
            elif comparison < 0:
                break
    if perm == list(range(ndim - 1, -1, -1)):
        return contiguous_strides(shape)
    out = [0] * ndim
    acc = 1
    for d in perm:
        out[d] = acc
        acc *= shape[d]
    return tuple(out)


def array_layout(value) -> tuple:
    """(shape, strides) of a constant operand: a Python number is 0-d; a numpy array has numpy's
    strides (an expanded constant's are 0 where it is broadcast, as PyTorch's expand)."""
    shape = tuple(getattr(value, "shape", ()))
    itemsize = getattr(value, "itemsize", 0)
    if not shape or not itemsize:
        return shape, contiguous_strides(shape)
    return shape, tuple(s // itemsize for s in value.strides)


# --- views: the result's strides from the input's (shape, strides), the params and the result's shape


def _permute(shape, strides, params, out_shape):
    return tuple(strides[d] for d in params["dims"])


def _transpose(shape, strides, params, out_shape):
    n = len(shape)
    if n == 0:
        return ()
    st = list(strides)
    d0, d1 = params["dim0"] % n, params["dim1"] % n
    st[d0], st[d1] = st[d1], st[d0]
    return tuple(st)


def _t(shape, strides, params, out_shape):
    return tuple(strides[::-1]) if len(shape) == 2 else tuple(strides)


def _unsqueeze(shape, strides, params, out_shape):
    n = len(shape)
    d = params["dim"] % (n + 1)
    new = 1 if d >= n else shape[d] * strides[d]
    return tuple(strides[:d]) + (new,) + tuple(strides[d:])


def _squeeze(shape, strides, params, out_shape):
    n = len(shape)
    if n == 0:
        return ()
    d = params["dim"] % n
    if shape[d] != 1:
        return tuple(strides)
    return tuple(strides[:d]) + tuple(strides[d + 1:])


def _expand(shape, strides, params, out_shape):
    ndim = len(out_shape)
    out = [0] * ndim
    offset = ndim - len(shape)
    for i in range(ndim - 1, -1, -1):
        d = i - offset
        size = shape[d] if d >= 0 else 1
        stride = strides[d] if d >= 0 else (out_shape[i + 1] * out[i + 1] if i + 1 < ndim else 1)
        if size != out_shape[i]:
            stride = 0
        out[i] = stride
    return tuple(out)


def _view(shape, strides, params, out_shape):
    st = view_strides(shape, strides, out_shape)
    return st if st is not None else contiguous_strides(out_shape)


# indexing (issue 13): x[i] drops the dim, x[a:b:k] steps k times as far, x[...] is the same layout
def _select(shape, strides, params, out_shape):
    d = params["dim"]
    return tuple(strides[:d]) + tuple(strides[d + 1:])


def _slice(shape, strides, params, out_shape):
    d = params["dim"]
    return tuple(strides[:d]) + (strides[d] * params["step"],) + tuple(strides[d + 1:])


def _alias(shape, strides, params, out_shape):
    return tuple(strides)


#: op key -> the strides of the view it makes
VIEWS = {"permute": _permute, "transpose": _transpose, "t": _t, "unsqueeze": _unsqueeze,
         "squeeze": _squeeze, "expand": _expand, "view": _view, "reshape_alias": _view,
         "select": _select, "slice": _slice, "alias": _alias, "squeeze_dim": _squeeze}

#: ops that take a Python number as a param but run TensorIterator on it as a 0-d operand (which
#: takes them off its same-shape fast path: ``1 - C.T`` has strides (1, 1), ``sin(C.T)`` (3, 1))
SCALAR_OPERAND = frozenset({"rsub", "add_scalar", "sub_scalar", "mul_scalar", "div_scalar"})

#: ops whose result is a new contiguous tensor, whatever their operands' layout
#: (``number ** tensor`` too: ATen allocates pow.Scalar's result contiguous)
CONTIGUOUS = frozenset({"sum", "sum_dim", "mean", "mean_dim", "max", "min", "prod", "softmax", "norm",
                        "dot", "mv", "mm", "clone", "unsafe_view", "pow_scalar_base",
                        "cat", "stack", "select_backward", "slice_backward", "bmm", "index"})


# --- torch.nn.functional, losses, more tensor functions (issue 13) -------------------------------
def _squeeze_dims(shape, strides, params, out_shape):
    # squeeze() (every size-1 dim) and squeeze((d0, d1)): the other dims keep their strides
    n = len(shape)
    dims = range(n) if "dim" not in params else {d % n for d in params["dim"]} if n else ()
    return tuple(st for k, (size, st) in enumerate(zip(shape, strides)) if not (k in dims and size == 1))


VIEWS.update({"squeeze_all": _squeeze_dims, "squeeze_dim": _squeeze, "squeeze_dims": _squeeze_dims})
CONTIGUOUS = CONTIGUOUS | {"addmm", "log_softmax", "logsumexp", "nll_loss", "norm_dim", "repeat", "var", "std",
                           "amax", "amin", "max_dim", "min_dim"}
