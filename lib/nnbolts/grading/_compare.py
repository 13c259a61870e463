"""Comparing a student's output with the reference's, in plain Python arithmetic.

Tensors are read into Python lists (``_tensors.values``; a tensor subclass is refused) and
compared element by element with ``float`` operators, so that a message can name the first
differing index, the expected and received values and the largest errors.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch

from ._tensors import TENSOR_BASE, plain_tensor, values

# (rtol, atol) per dtype, for k = 1. float32 is torch.testing.assert_close's default; float64
# takes torch's rtol with a tighter atol (the cases are built so that every known mistake is
# off by far more than either). Callers scale both by k for longer computations.
_TOLERANCES = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-9),
}


def tolerance(dtype: torch.dtype, k: float = 1.0) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing results in ``dtype``, both multiplied by ``k``.

    ==========  ============  ===========
    dtype       rtol          atol
    ==========  ============  ===========
    float32     1.3e-6 · k    1e-5 · k      (torch.testing.assert_close's defaults)
    float64     1e-7 · k      1e-9 · k      (torch's rtol, a tighter atol)
    float16     1e-3 · k      1e-5 · k
    bfloat16    1.6e-2 · k    1e-5 · k
    ==========  ============  ===========

    Element ``g`` matches ``e`` when ``|g − e| ≤ atol + rtol·|e|``; NaN matches only NaN and an
    infinity only the same infinity. Integer and bool tensors must match exactly.
    The ``check_*`` functions use k = 1 for one call and k = 2 for optimizer trajectories.

    Example hidden-test cell: ``check_elementwise(tanh, nnbolts.activations.tanh,
    rtol=tolerance(torch.float32, 4)[0])``
    """
    rtol, atol = _TOLERANCES.get(dtype, (1e-7, 1e-9))
    return rtol * k, atol * k


@dataclass
class Mismatch:
    """What differs between an expected and a received value."""

    what: str                 # "values", "shape", "device", "dtype", "type", "keys", "nonfinite"
    text: str                 # one sentence for the student
    index: tuple | None = None
    expected: object = None
    got: object = None
    count: int = 0            # elements that differ
    total: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0


def _is_nan(x) -> bool:
    return x != x


def _is_inf(x) -> bool:
    return x == x and x - x != 0  # inf − inf is nan; any finite x − x is 0


def _fabs(x):
    return -x if x < 0 else x


def unravel(flat: int, shape) -> tuple:
    index = []
    for size in reversed(tuple(shape)):
        index.append(flat % size if size else 0)
        flat = flat // size if size else 0
    return tuple(reversed(index))


def fmt_index(index) -> str:
    if index is None:
        return ""
    return "[" + ", ".join(str(i) for i in index) + "]"


def fmt_number(x) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        if _is_nan(x) or _is_inf(x):
            return str(x)
        text = f"{x:.10g}"
        return text if any(c in text for c in ".en") else text + ".0"
    return repr(x)


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def with_article(word: str) -> str:
    """``word`` with its indefinite article: "a float32", "an int64"."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def device_name(device) -> str:
    device = torch.device(device)
    return "CPU" if device.type == "cpu" else str(device)


def compare_lists(expected: list, got: list, rtol: float, atol: float, exact: bool = False):
    """``(first_bad_index, n_bad, max_abs, max_rel)`` over two flat lists of numbers."""
    first, bad, max_abs, max_rel = None, 0, 0.0, 0.0
    for i in range(len(expected)):
        e, g = expected[i], got[i]
        if exact:
            ok = e == g or (_is_nan(e) and _is_nan(g))
        elif _is_nan(e) or _is_nan(g) or _is_inf(e) or _is_inf(g):
            ok = e == g or (_is_nan(e) and _is_nan(g))
            if not ok:
                max_abs = max_rel = float("inf")
        else:
            d = _fabs(g - e)
            size = _fabs(e)
            ok = d <= atol + rtol * size
            if d > max_abs:
                max_abs = d
            rel = d / size if size else (float("inf") if d else 0.0)
            if rel > max_rel:
                max_rel = rel
        if not ok:
            bad += 1
            if first is None:
                first = i
    return first, bad, max_abs, max_rel


def compare_tensors(expected, got, rtol, atol, *, input_dtype=None, input_device=None,
                    value_checks=True) -> Mismatch | None:
    """Compare a student's tensor with the reference's: type, shape, device, dtype, non-finite
    values, then values. ``None`` when they match."""
    plain = plain_tensor(got)
    if plain is None:
        if isinstance(got, TENSOR_BASE):
            return Mismatch("type", f"returned a {type(got).__name__} (a tensor subclass); "
                            "return a plain torch.Tensor", expected=None, got=type(got).__name__)
        return Mismatch("type", f"returned {describe_type(got)} where a torch.Tensor was "
                        "expected")
    got = plain
    if tuple(got.shape) != tuple(expected.shape):
        return Mismatch("shape", f"returned a tensor of shape {tuple(got.shape)}, expected "
                        f"shape {tuple(expected.shape)}")
    if got.device != expected.device:
        where = device_name(input_device or expected.device)
        got_where = with_article(device_name(got.device))
        return Mismatch("device", f"returned {got_where} tensor for {with_article(where)} "
                        f"input (outputs must stay on the input's device; create new tensors "
                        f"with device= of the input)")
    if got.dtype != expected.dtype:
        source = input_dtype or expected.dtype
        return Mismatch("dtype", f"returned {with_article(dtype_name(got.dtype))} tensor for "
                        f"{dtype_name(source)} input (outputs must keep the input's dtype; "
                        f"create new tensors with dtype= of the input)")
    if not value_checks:
        return None
    e, g = values(expected), values(got)
    exact = not expected.is_floating_point()
    first, bad, max_abs, max_rel = compare_lists(e, g, rtol, atol, exact=exact)
    if first is None:
        return None
    index = unravel(first, expected.shape)
    ev, gv = e[first], g[first]
    if not exact and (_is_nan(gv) or _is_inf(gv)) and not (_is_nan(ev) or _is_inf(ev)):
        n_bad = sum(1 for x, y in zip(g, e) if (_is_nan(x) or _is_inf(x)) and not (
            _is_nan(y) or _is_inf(y)))
        return Mismatch("nonfinite", f"{n_bad} element{'s are' if n_bad != 1 else ' is'} nan "
                        "or inf where the reference is finite (an overflow, or a division by "
                        "zero?)", index=index, expected=ev, got=gv, count=bad, total=len(e),
                        max_abs=max_abs, max_rel=max_rel)
    return Mismatch("values", "wrong values", index=index, expected=ev, got=gv, count=bad,
                    total=len(e), max_abs=max_abs, max_rel=max_rel)


def describe_type(x) -> str:
    if x is None:
        return "None"
    kind = type(x)
    if kind.__module__ == "numpy":
        return f"a numpy.{kind.__name__}"
    article = "an" if kind.__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {kind.__name__}"


def is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and not isinstance(
        x, TENSOR_BASE)


def compare_numbers(expected, got, rtol, atol) -> Mismatch | None:
    """Python numbers (a schedule's rate, a fan, a gain, ``state['step']``)."""
    if isinstance(expected, bool):
        if not isinstance(got, bool):
            return Mismatch("type", f"returned {describe_type(got)}, expected a bool")
        return None if got == expected else Mismatch(
            "values", "wrong value", expected=expected, got=got)
    if isinstance(expected, numbers.Integral):
        if isinstance(got, bool) or not isinstance(got, numbers.Integral):
            return Mismatch("type", f"returned {describe_type(got)}, expected a Python int",
                            expected=expected, got=got)
        return None if int(got) == int(expected) else Mismatch(
            "values", "wrong value", expected=int(expected), got=int(got))
    if not is_real(got):
        hint = " (use a Python float, e.g. via math functions, not a tensor)" if isinstance(
            got, TENSOR_BASE) else ""
        return Mismatch("type", f"returned {describe_type(got)}, expected a Python number{hint}",
                        expected=expected, got=got)
    e, g = float(expected), float(got)
    first, _, max_abs, max_rel = compare_lists([e], [g], rtol, atol)
    if first is None:
        return None
    return Mismatch("values", "wrong value", expected=e, got=g, count=1, total=1,
                    max_abs=max_abs, max_rel=max_rel)


def compare(expected, got, rtol, atol, **kw) -> tuple[str, Mismatch] | None:
    """Compare nested outputs (tensors, numbers, tuples/lists, dicts, None, str).

    Returns ``(path, mismatch)`` for the first difference, the path saying where it is
    (``""`` for the value itself, ``"[1]"``, ``"['exp_avg']"``), or ``None``.
    """
    if isinstance(expected, TENSOR_BASE):
        mismatch = compare_tensors(expected, got, rtol, atol, **kw)
        return None if mismatch is None else ("", mismatch)
    if expected is None:
        return None if got is None else ("", Mismatch(
            "type", f"returned {describe_type(got)}, expected None"))
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or isinstance(got, str):
            return "", Mismatch("type", f"returned {describe_type(got)}, expected a "
                                f"{type(expected).__name__} of {len(expected)} items")
        if len(got) != len(expected):
            return "", Mismatch("type", f"returned {len(got)} items, expected {len(expected)}")
        for i, (e, g) in enumerate(zip(expected, got)):
            found = compare(e, g, rtol, atol, **kw)
            if found:
                return f"[{i}]{found[0]}", found[1]
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return "", Mismatch("type", f"returned {describe_type(got)}, expected a dict")
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected and got[k] is not None]
        if missing or extra:
            parts = []
            if missing:
                parts.append("missing key" + ("s " if len(missing) > 1 else " ")
                             + ", ".join(repr(k) for k in missing))
            if extra:
                parts.append("unexpected key" + ("s " if len(extra) > 1 else " ")
                             + ", ".join(repr(k) for k in extra))
            wanted = (f"the keys {', '.join(repr(k) for k in expected)}" if expected
                      else "an empty dict")
            return "", Mismatch("keys", "; ".join(parts) + f" (expected {wanted})")
        for key, e in expected.items():
            found = compare(e, got[key], rtol, atol, **kw)
            if found:
                return f"[{key!r}]{found[0]}", found[1]
        return None
    if isinstance(expected, numbers.Number):
        mismatch = compare_numbers(expected, got, max(rtol, 1e-6), atol)
        return None if mismatch is None else ("", mismatch)
    if isinstance(expected, str):
        if type(got) is not str:
            return "", Mismatch("type", f"returned {describe_type(got)}, expected a str")
        return None if str.__eq__(got, expected) else ("", Mismatch(
            "values", "wrong value", expected=expected, got=got))
    if type(got) is not type(expected) or not type(expected).__eq__(expected, got):
        return "", Mismatch("values", "wrong value", expected=expected, got=got)
    return None


def same(a, b) -> bool:
    """Bitwise equality of nested values (for detecting that an input was modified)."""
    if isinstance(a, TENSOR_BASE):
        if not isinstance(b, TENSOR_BASE) or tuple(a.shape) != tuple(b.shape) or (
                a.dtype != b.dtype or a.device != b.device):
            return False
        first, _, _, _ = compare_lists(values(a), values(b), 0.0, 0.0, exact=True)
        return first is None
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(
            same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (_is_nan(a) and _is_nan(b))
    return type(a) is type(b) and a == b


def first_change(before, after, name: str) -> str | None:
    """Where ``after`` differs from ``before`` (a snapshot), for the mutation message."""
    if isinstance(before, dict):
        if not isinstance(after, dict):
            return f"{name} was replaced"
        added = [k for k in after if k not in before]
        removed = [k for k in before if k not in after]
        if added:
            return f"key {added[0]!r} was added to {name}"
        if removed:
            return f"key {removed[0]!r} was removed from {name}"
        for key in before:
            change = first_change(before[key], after[key], f"{name}[{key!r}]")
            if change:
                return change
        return None
    if isinstance(before, (list, tuple)):
        for i, (b, a) in enumerate(zip(before, after)):
            change = first_change(b, a, f"{name}[{i}]")
            if change:
                return change
        return None
    if same(before, after):
        return None
    if isinstance(before, TENSOR_BASE):
        return f"{name} was changed in place"
    return f"{name} was {fmt_number(before)} and is now {fmt_number(after)}"
