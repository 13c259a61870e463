"""Shared machinery of the optimizer oracle tests: run an nnbolts optimizer and its torch
namesake on the same stochastic problem and compare whole trajectories.

The problem: four parameters of different shapes (one never receives a gradient, so "params
without grad are skipped" is checked everywhere), a smooth convex loss plus seeded per-step
gradient noise that imitates minibatch sampling. Each side builds its own parameters and its own
gradients, so a torch path that mutates ``p.grad`` cannot leak into the other side.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch

SHAPES = [(6, 4), (4,), (3, 2, 2)]


def make_params(dtype, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype).to(device).requires_grad_()
              for s in SHAPES]
    frozen = torch.randn(3, generator=gen, dtype=dtype).to(device).requires_grad_()
    return params + [frozen]


@functools.lru_cache(maxsize=4096)
def _problem(step, shapes, dtype, device):
    """Targets and noise of step ``step``; cached because both sides of a comparison ask."""
    gen = torch.Generator().manual_seed(1000 + step)
    terms = []
    for shape in shapes:
        n = math.prod(shape)
        target = torch.linspace(-1, 1, n, dtype=dtype).reshape(shape).to(device)
        noise = torch.randn(shape, generator=gen, dtype=dtype).to(device)
        terms.append((target, noise))
    return terms


def objective(params, step, *, negate=False):
    """A smooth loss of ``params[:-1]`` (the last one gets no gradient) with per-step noise."""
    live = params[:-1]
    p0 = live[0]
    terms = _problem(step, tuple(tuple(p.shape) for p in live), p0.dtype, p0.device)
    loss = 0.0
    for i, (p, (target, noise)) in enumerate(zip(live, terms)):
        loss = loss + (i + 1) * ((p - target) ** 2).sum() + 0.1 * (noise * p).sum()
        loss = loss + 0.05 * (p ** 4).sum()
    return -loss if negate else loss


def run(make_optimizer, params, steps, *, start=0, negate=False, scheduler=None):
    """``steps`` optimizer steps on :func:`objective`; returns the optimizer."""
    opt = make_optimizer(params) if callable(make_optimizer) else make_optimizer
    for k in range(start, start + steps):
        opt.zero_grad()
        objective(params, k, negate=negate).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return opt


def max_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().max().clamp_min(torch.finfo(b.dtype).tiny)
    return float(((a - b).abs().max() / scale).item()) if a.numel() else 0.0


def assert_same_trajectory(ours, theirs, dtype, *, rtol64=1e-10, where=""):
    """float64: max relative error ≤ ``rtol64`` per tensor; float32: assert_close defaults."""
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        a, b = a.detach(), b.detach()
        if dtype == torch.float64:
            err = max_rel_err(a, b)
            assert err <= rtol64, f"{where} tensor {i}: relative error {err:.3e} > {rtol64:g}"
        else:
            torch.testing.assert_close(a, b, msg=lambda m, i=i: f"{where} tensor {i}: {m}")


def assert_same_state(ours_opt, theirs_opt, params_ours, params_theirs, dtype, keys):
    """The per-parameter state tensors under ``keys`` agree (steps compared as numbers)."""
    for po, pt in zip(params_ours, params_theirs):
        so, st = ours_opt.state.get(po, {}), theirs_opt.state.get(pt, {})
        assert set(so) == set(st), f"state keys differ: {sorted(so)} vs {sorted(st)}"
        for key in keys:
            if key not in st:
                continue
            if key == "step":
                assert float(so[key]) == float(st[key])
            elif isinstance(st[key], torch.Tensor):
                assert_same_trajectory([so[key]], [st[key]], dtype, where=f"state[{key!r}]")


def option_grid(**options):
    """All combinations of the given option values, as a list of dicts."""
    names = list(options)
    return [dict(zip(names, values)) for values in itertools.product(*options.values())]


def kwargs_id(kwargs: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in kwargs.items())


def compare_with_torch(ours_cls, torch_cls, kwargs, *, dtype, device, steps=300, state_keys=()):
    """Run both optimizers for ``steps`` and compare parameters and state."""
    negate = bool(kwargs.get("maximize", False))
    p_ours = make_params(dtype, device)
    p_theirs = make_params(dtype, device)
    o = run(lambda ps: ours_cls(ps, **kwargs), p_ours, steps, negate=negate)
    t = run(lambda ps: torch_cls(ps, **kwargs), p_theirs, steps, negate=negate)
    where = f"{ours_cls.__name__}({kwargs_id(kwargs)})"
    assert_same_trajectory(p_ours, p_theirs, dtype, where=where)
    assert_same_state(o, t, p_ours, p_theirs, dtype, state_keys)
    assert o.state.get(p_ours[-1], {}) == {}, "a parameter without gradient got state"
    return o, t


def state_dict_round_trip(ours_cls, torch_cls, kwargs, *, dtype, device, steps=150):
    """Train ``steps`` with one library, move the state_dict to the other, train ``steps`` more
    with both, in both directions; the continued runs must match an uninterrupted torch run."""
    negate = bool(kwargs.get("maximize", False))
    reference = make_params(dtype, device)
    run(lambda ps: torch_cls(ps, **kwargs), reference, 2 * steps, negate=negate)
    for first, second in ((torch_cls, ours_cls), (ours_cls, torch_cls)):
        params = make_params(dtype, device)
        opt = run(lambda ps, c=first: c(ps, **kwargs), params, steps, negate=negate)
        saved = opt.state_dict()
        fresh = second(params, **kwargs)
        fresh.load_state_dict(saved)
        run(fresh, params, steps, start=steps, negate=negate)
        assert_same_trajectory(params, reference, dtype,
                               where=f"{first.__name__}->{second.__name__}")


def run_on_meta(opt_cls, kwargs, steps=2):
    """An optimizer step on ``meta`` tensors: every state tensor must stay on ``meta``."""
    params = [torch.empty(s, device="meta", requires_grad=True) for s in SHAPES]
    opt = opt_cls(params, **kwargs)
    for _ in range(steps):
        for p in params:
            p.grad = torch.empty_like(p)
        opt.step()
    for p in params:
        assert p.device.type == "meta"
        for key, value in opt.state[p].items():
            if isinstance(value, torch.Tensor):
                assert value.device.type == "meta", f"state[{key!r}] left the meta device"
                assert value.dtype == p.dtype, f"state[{key!r}] has dtype {value.dtype}"


def compare_with_both_torch_paths(make_ours, torch_cls, kwargs, *, dtype, device, steps=300,
                                  state_keys=()):
    """:func:`compare_with_torch` against torch's one-tensor (``foreach=False``) and multi-tensor
    (``foreach=True``) paths at once. For a rule nnbolts runs only one-tensor, one run of ours
    serves both comparisons: a quarter less time, and the grid keeps every option.
    ``make_ours(params, **kwargs)`` builds the nnbolts optimizer."""
    negate = bool(kwargs.get("maximize", False))
    p_ours = make_params(dtype, device)
    ours = run(lambda ps: make_ours(ps, **kwargs), p_ours, steps, negate=negate)
    for foreach in (False, True):
        p_theirs = make_params(dtype, device)
        theirs = run(lambda ps, f=foreach: torch_cls(ps, foreach=f, **kwargs),
                     p_theirs, steps, negate=negate)
        where = f"{torch_cls.__name__}({kwargs_id(kwargs)}) vs torch foreach={foreach}"
        assert_same_trajectory(p_ours, p_theirs, dtype, where=where)
        assert_same_state(ours, theirs, p_ours, p_theirs, dtype, state_keys)
    assert ours.state.get(p_ours[-1], {}) == {}, "a parameter without gradient got state"


def _same(a, b) -> bool:
    return torch.equal(a, b) if torch.is_tensor(a) else a == b


def check_pure_step(step_fn, p, state, opt, kwargs, generator, *, steps=20):
    """The pure ``step_fn(p, g, state, **kwargs)`` against the optimizer ``opt`` built on one
    clone of ``p``, for ``steps`` random gradients drawn from ``generator``: no input is mutated,
    every step's parameter is the class's, and so is every entry of its state. Returns the final
    ``(p, state)``."""
    opt_p = opt.param_groups[0]["params"][0]
    for _ in range(steps):
        g = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        p_before, g_before = p.clone(), g.clone()
        state_before = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
        new_p, new_state = step_fn(p, g, state, **kwargs)
        assert torch.equal(p, p_before) and torch.equal(g, g_before), "inputs were mutated"
        for key, value in state_before.items():
            assert _same(state[key], value), f"state[{key!r}] was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        assert new_p.device == p.device and new_p.dtype == p.dtype
        for key, value in opt.state[opt_p].items():
            assert _same(new_state[key], value), f"state[{key!r}] differs from the class's"
        p, state = new_p, new_state
    return p, state
