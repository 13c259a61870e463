"""Lockstep oracle for optimizers whose updates reproduce torch's operation for operation.

:func:`lockstep` starts an nnbolts optimizer and its torch namesake from the same parameters,
computes each step's gradient once (at nnbolts' parameters, by a ``grad_fn`` that may produce
sparse gradients) and hands a copy to each side. On the CPU the two sides must then agree bit for
bit after every single step, a stronger check than comparing the ends of two separate runs, at
half the cost of computing gradients twice. Elsewhere (CUDA) the end points are compared with
the tolerance of :func:`optim_oracle.assert_same_trajectory`.

:func:`state_dict_handover` is the state-dict check with arbitrary parameters and gradients:
train with one library, hand the state dict (through ``torch.save``) to the other, continue, and
compare with an uninterrupted torch run.
"""

from __future__ import annotations

import io

import torch
from optim_oracle import _problem, assert_same_state, assert_same_trajectory, objective


def clone_params(params):
    return [p.detach().clone().requires_grad_(p.requires_grad) for p in params]


def dense_grads(params, k, *, negate=False):
    """The gradient of the oracle's objective at step ``k``, written out instead of taken by
    autograd (a third of the cost): for the i-th live tensor, 2(i+1)(θ − target) + 0.1·noise +
    0.2·θ³. The last parameter gets no gradient."""
    live = params[:-1]
    terms = _problem(k, tuple(tuple(p.shape) for p in live), live[0].dtype, live[0].device)
    with torch.no_grad():
        for i, (p, (target, noise)) in enumerate(zip(live, terms)):
            g = (p - target).mul_(2 * (i + 1)).add_(noise, alpha=0.1).add_(p ** 3, alpha=0.2)
            p.grad = g.neg_() if negate else g
    params[-1].grad = None


def autograd_grads(params, k, *, negate=False):
    """The same gradient as :func:`dense_grads`, by autograd on the oracle's objective."""
    for p in params:
        p.grad = None
    objective(params, k, negate=negate).backward()


def exact_on(device) -> bool:
    return torch.device(device).type == "cpu"


def lockstep(make_ours, make_theirs, params, grad_fn, *, steps=300, exact=True, state_keys=(),
             where=""):
    """Run both optimizers ``steps`` steps on shared gradients; return both optimizers and their
    parameters. ``exact``: every parameter equal after every step; otherwise close at the end."""
    p_ours, p_theirs = clone_params(params), clone_params(params)
    ours, theirs = make_ours(p_ours), make_theirs(p_theirs)
    for k in range(steps):
        grad_fn(p_ours, k)
        for p, q in zip(p_ours, p_theirs):
            q.grad = None if p.grad is None else p.grad.clone()
        ours.step()
        theirs.step()
        if exact:
            for i, (a, b) in enumerate(zip(p_ours, p_theirs)):
                assert torch.equal(a, b), (
                    f"{where}: tensor {i} differs from torch after step {k + 1}: max |diff| "
                    f"{(a - b).abs().max().item():.3e}")
    if not exact:
        assert_same_trajectory(p_ours, p_theirs, params[0].dtype, where=where)
    assert_same_state(ours, theirs, p_ours, p_theirs, params[0].dtype, state_keys)
    if exact:
        for po, pt in zip(p_ours, p_theirs):
            so, st = ours.state.get(po, {}), theirs.state.get(pt, {})
            for key, value in st.items():
                if torch.is_tensor(value) and key != "step":
                    assert torch.equal(so[key], value), f"{where}: state[{key!r}] differs"
    return ours, theirs, p_ours, p_theirs


def through_bytes(state_dict):
    """``state_dict`` saved with ``torch.save`` and loaded back, as a checkpoint would be."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def state_dict_handover(ours_cls, torch_cls, kwargs, params, grad_fn, *, steps=50, exact=True):
    """Train ``steps`` with one library, load its state dict into the other, train ``steps``
    more, in both directions; both continued runs must match an uninterrupted torch run."""

    def train(opt, ps, start):
        for k in range(start, start + steps):
            grad_fn(ps, k)
            opt.step()

    reference = clone_params(params)
    ref_opt = torch_cls(reference, **kwargs)
    train(ref_opt, reference, 0)
    train(ref_opt, reference, steps)
    for first, second in ((torch_cls, ours_cls), (ours_cls, torch_cls)):
        ps = clone_params(params)
        opt = first(ps, **kwargs)
        train(opt, ps, 0)
        fresh = second(ps, **kwargs)
        fresh.load_state_dict(through_bytes(opt.state_dict()))
        train(fresh, ps, steps)
        where = f"{first.__module__}.{first.__name__} -> {second.__module__}.{second.__name__}"
        if exact:
            for i, (a, b) in enumerate(zip(ps, reference)):
                assert torch.equal(a, b), f"{where}: tensor {i} differs from the torch run"
        else:
            assert_same_trajectory(ps, reference, params[0].dtype, where=where)


def assert_same_under_scheduler(ours_cls, torch_cls, groups, make_scheduler, *, steps=100):
    """Both classes on the same two parameter groups (``groups(params)`` builds them), stepped
    ``steps`` times with ``dense_grads`` under the scheduler ``make_scheduler(optimizer)``:
    the parameters end bit-identical (float64, CPU)."""
    from optim_oracle import make_params

    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    for params, opt in ((a, ours_cls(groups(a), lr=0.01)), (b, torch_cls(groups(b), lr=0.01))):
        scheduler = make_scheduler(opt)
        for k in range(steps):
            dense_grads(params, k)
            opt.step()
            scheduler.step()
    for x, y in zip(a, b):
        assert torch.equal(x, y)
