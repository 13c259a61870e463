"""Grading an in-place initializer against nnbolts', draw for draw or in distribution."""

from __future__ import annotations

import inspect
import math

import torch

from ._cases import _devices_or_default, run_seed
from ._compare import compare, fmt_number, tolerance, values
from ._engine import (
    DEFAULT_BUDGET,
    DEFAULT_TIMEOUT,
    Call,
    Session,
    Where,
    _observe_all,
    _resolve_dtypes,
    describe_call,
    fail,
    mismatch_lines,
    mistake_lines,
)
from ._mistakes import Mistake, known_mistakes
from ._tensors import TENSOR_BASE, plain_tensor

DEFAULT_INIT_SHAPES = ((250, 100), (16, 8, 3, 3), (40, 70))
STAT_SAMPLES = 20_000
"""How many draws the statistical comparison pools (over repeated calls when needed)."""


def _stats(xs: list) -> dict:
    """Mean, standard deviation, excess kurtosis and largest magnitude, in plain Python."""
    n = len(xs)
    mean = sum(xs) / n
    m2 = m4 = 0.0
    top = 0.0
    for x in xs:
        d = x - mean
        d2 = d * d
        m2 += d2
        m4 += d2 * d2
        mag = -x if x < 0 else x
        if mag > top:
            top = mag
    m2 /= n
    m4 /= n
    return {"n": n, "mean": mean, "std": math.sqrt(m2), "kurtosis": m4 / (m2 * m2) - 3.0
            if m2 else 0.0, "max": top}


def _same_distribution(ref: dict, got: dict) -> str | None:
    """``None`` if ``got``'s sample looks drawn from ``ref``'s distribution, else the reason.

    Thresholds for ≥ 20 000 draws: the standard deviation within 3 % (its sampling error is
    ~0.5 %), the mean within 5 standard errors, the excess kurtosis within 0.3 (uniform −1.2,
    normal 0; sampling error ~0.04), and for a bounded (uniform-like) reference the largest
    magnitude within 2 % of the reference's.
    """
    if ref["std"] == 0:
        return None if got["std"] == 0 and got["mean"] == ref["mean"] else "values differ"
    ratio = got["std"] / ref["std"]
    if not 0.97 <= ratio <= 1.03:
        return (f"standard deviation {fmt_number(got['std'])}, expected "
                f"{fmt_number(ref['std'])} (ratio {ratio:.3f})")
    if abs(got["mean"] - ref["mean"]) > 5 * ref["std"] / math.sqrt(min(ref["n"], got["n"])):
        return f"mean {fmt_number(got['mean'])}, expected {fmt_number(ref['mean'])}"
    if abs(got["kurtosis"] - ref["kurtosis"]) > 0.3:
        shape = "uniform" if ref["kurtosis"] < -0.8 else "normal"
        return (f"the draws do not look {shape} (excess kurtosis {got['kurtosis']:.2f}, "
                f"expected {ref['kurtosis']:.2f})")
    if ref["kurtosis"] < -0.8 and not 0.98 <= got["max"] / ref["max"] <= 1.02:
        return (f"largest magnitude {fmt_number(got['max'])}, expected about "
                f"{fmt_number(ref['max'])} (the bound)")
    return None


def check_initializer(student, reference, *, name=None, kwargs=None, shapes=None, devices=None,
                      dtypes=None, seed=0, statistical=True, requires_grad=False,
                      tolerance_scale=1.0, mistakes=(), timeout=DEFAULT_TIMEOUT,
                      budget=DEFAULT_BUDGET) -> None:
    """Grade an in-place initializer (``xavier_uniform_(tensor, gain=..., generator=...)``).

    For every keyword set in ``kwargs`` (default ``[{}]``), shape in ``shapes`` (default
    (250, 100), a conv weight (16, 8, 3, 3), (40, 70)), device and dtype, both functions fill
    a NaN-filled tensor, each with its own ``torch.Generator`` seeded alike (the generator is
    passed only if the reference takes one). The student must fill every element in place and
    return the same tensor object, keeping device and dtype.

    **Draw order.** If the student draws the same numbers as the reference (same call, same
    generator), the values must match. If the reference is random and the values differ,
    ``statistical=True`` (the default) accepts a student who draws in another order or with
    another call, provided ≥ 20 000 pooled draws match the reference's in standard deviation
    (3 %), mean, shape (excess kurtosis: uniform vs normal) and, for uniform draws, the bound
    (2 %). Deterministic references (``zeros_``, ``constant_``) must match exactly.
    ``statistical=False`` demands the reference's exact draws.

    Known mistakes (fan_out for fan_in, the bound without √3, the gain forgotten, the kernel's
    receptive field ignored, normal for uniform, ...) are recognised draw for draw or in
    distribution. ``requires_grad=True`` hands in leaf tensors that require grad
    (the fill must then happen under ``torch.no_grad()``).

    Example hidden-test cell: ``check_initializer(kaiming_uniform_, nnbolts.init.kaiming_uniform_,
    kwargs=[{"nonlinearity": "relu"}, {"a": 0.2, "mode": "fan_out"}])``
    """
    name = name or reference.__name__
    grid = [dict(k) for k in kwargs] if kwargs else [{}]
    shapes = [tuple(s) for s in shapes] if shapes else list(DEFAULT_INIT_SHAPES)
    takes_generator = "generator" in inspect.signature(reference).parameters
    session = Session(name, timeout=timeout, budget=budget)
    catalogue = list(known_mistakes(reference)) + list(mistakes)
    random_reference = [None]
    session.vet_student(student)
    n_cases = len(grid) * len(shapes)
    fills = [(device, dtype, index) for device in _devices_or_default(devices)
             for dtype in _resolve_dtypes(dtypes) for index in range(n_cases)]

    def inputs(device, dtype, index):
        kw, shape = grid[index // len(shapes)], shapes[index % len(shapes)]
        return kw, shape, run_seed(seed) * 7919 + index

    # the student's fills made in its kernel in one exchange, each on a NaN-filled tensor
    observed = _observe_all(session, student, [
        Call(_blank(shape, device, dtype, requires_grad), **kw, **(
            {"generator": _generator(device, case_seed)} if takes_generator else {}))
        for device, dtype, index in fills for kw, shape, case_seed in [inputs(device, dtype,
                                                                              index)]])
    for (device, dtype, index), observation in zip(fills, observed):
        rtol, atol = tolerance(dtype, tolerance_scale)
        kw, shape, case_seed = inputs(device, dtype, index)
        _one_fill(session, student, reference, name, kw, shape, device, dtype, case_seed, index,
                  n_cases, rtol, atol, catalogue, statistical, takes_generator, requires_grad,
                  random_reference, observation)


def _generator(device, seed):
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


def _blank(shape, device, dtype, requires_grad):
    t = torch.full(shape, float("nan"), device=device, dtype=dtype)
    return t.requires_grad_(True) if requires_grad else t


def _fill(fn, shape, device, dtype, kw, seed, takes_generator, requires_grad):
    t = _blank(shape, device, dtype, requires_grad)
    extra = {"generator": _generator(device, seed)} if takes_generator else {}
    return t, fn(t, **kw, **extra)


def _one_fill(session, student, reference, name, kw, shape, device, dtype, seed, index, n_cases,
              rtol, atol, catalogue, statistical, takes_generator, requires_grad,
              random_reference, observation=None):
    where = Where(device, dtype, index, n_cases)
    probe = _blank(shape, device, dtype, requires_grad)
    call_kw = dict(kw)
    if takes_generator:
        call_kw["generator"] = _generator(device, seed)
    call_text = describe_call(name, ["tensor"], (probe,), call_kw).replace(
        "tensor is a", "tensor is a NaN-filled")
    ref_t, _ = session.reference(_fill, reference, shape, device, dtype, kw, seed,
                                 takes_generator, requires_grad)
    if random_reference[0] is None:
        _, other = session.reference(_fill, reference, shape, device, dtype, kw, seed + 1,
                                     takes_generator, requires_grad)
        random_reference[0] = takes_generator and compare(ref_t, other, 0.0, 0.0) is not None

    stu_t = _blank(shape, device, dtype, requires_grad)
    extra = {"generator": _generator(device, seed)} if takes_generator else {}
    returned = session.student(
        (lambda: student(stu_t, **kw, **extra)) if observation is None else (
            lambda: observation((stu_t,), {**kw, **extra})), where, call_text)

    # the tensor handed in must hold the result, on its device and in its dtype
    filled = plain_tensor(stu_t)
    nan_left = sum(1 for x in values(filled) if x != x)
    if nan_left == filled.numel():
        if isinstance(returned, TENSOR_BASE) and returned is not stu_t:
            fail(name, "did not fill the tensor it was given (it returned a new tensor "
                 "instead): an initializer works in place", where, [f"call: {call_text}"])
        fail(name, "did not fill the tensor it was given", where, [f"call: {call_text}"])
    if nan_left:
        fail(name, f"left {nan_left} of {filled.numel()} elements unset", where,
             [f"call: {call_text}"])
    if returned is not stu_t:
        fail(name, f"returned {_what(returned)} instead of the tensor it filled (initializers "
             "fill in place and return their argument)", where, [f"call: {call_text}"])

    found = compare(ref_t, stu_t, rtol, atol, input_dtype=dtype, input_device=device)
    if found is None:
        return
    mismatch = found[1]
    if mismatch.what not in ("values", "nonfinite"):
        fail(name, mismatch.text, where, [f"call: {call_text}"])
    if statistical and random_reference[0]:
        ref_stats = _pooled(session, reference, shape, device, dtype, kw, seed,
                            takes_generator, requires_grad, role="reference")
        stu_stats = _pooled(session, student, shape, device, dtype, kw, seed, takes_generator,
                            requires_grad, role="student", where=where, call_text=call_text)
        reason = _same_distribution(ref_stats, stu_stats)
        if reason is None:
            return  # the right distribution, drawn in another order: accepted
        matched = _matching(catalogue, kw, shape, device, dtype, seed, stu_t, stu_stats, rtol,
                            atol, takes_generator, requires_grad)
        fail(name, "draws from the wrong distribution", where, [
            f"call: {call_text}",
            f"its values differ from the reference's under the same generator, and so does "
            f"their distribution: {reason}",
            *mistake_lines(matched)])
    matched = _matching(catalogue, kw, shape, device, dtype, seed, stu_t, None, rtol, atol,
                        takes_generator, requires_grad)
    fail(name, "wrong values", where, [f"call: {call_text}",
                                        *mismatch_lines(mismatch, rtol, atol),
                                        *mistake_lines(matched)])


def _what(x) -> str:
    if isinstance(x, TENSOR_BASE):
        return "another tensor"
    return "None" if x is None else f"a {type(x).__name__}"


def _pooled(session, fn, shape, device, dtype, kw, seed, takes_generator, requires_grad, *,
            role, where=None, call_text=""):
    """Statistics of ≥ STAT_SAMPLES draws, pooled over calls with seeds seed, seed+1, ..."""
    numel = math.prod(shape)
    repeats = max(1, -(-STAT_SAMPLES // numel))
    pool = []
    for r in range(repeats):
        if role == "reference":
            t, _ = session.reference(_fill, fn, shape, device, dtype, kw, seed + 1000 * r,
                                     takes_generator, requires_grad)
        else:
            t = _blank(shape, device, dtype, requires_grad)
            extra = {"generator": _generator(device, seed + 1000 * r)} if takes_generator else {}
            session.student(lambda t=t, extra=extra: fn(t, **kw, **extra), where, call_text)
        pool.extend(values(plain_tensor(t)))
    return _stats(pool)


def _matching(catalogue, kw, shape, device, dtype, seed, stu_t, stu_stats, rtol, atol,
              takes_generator, requires_grad) -> list[Mistake]:
    """Variants whose draws equal the student's (same generator), or, when ``stu_stats`` is
    given, whose distribution matches the student's."""
    found = []
    for mistake in catalogue:
        try:
            probe = torch.empty(shape, device=device, dtype=dtype)
            if mistake.applies is not None and not mistake.applies(probe, **kw):
                continue
            variant, _ = _fill(mistake.fn, shape, device, dtype, kw, seed, takes_generator,
                               requires_grad)
            if compare(variant, stu_t, rtol, atol) is None:
                found.append(mistake)
                continue
            if stu_stats is not None:
                pool = []
                numel = math.prod(shape)
                for r in range(max(1, -(-STAT_SAMPLES // numel))):
                    t, _ = _fill(mistake.fn, shape, device, dtype, kw, seed + 1000 * r,
                                 takes_generator, requires_grad)
                    pool.extend(values(plain_tensor(t)))
                if _same_distribution(_stats(pool), stu_stats) is None:
                    found.append(mistake)
        except Exception:
            continue
    return found
