"""Rprop against torch.optim.Rprop: bit-identical after every step on CPU (parameters, ``prev``
and the per-element ``step_size``), against both of torch's paths, state dicts both ways, the
step-size rule by hand, the pure step, meta, bad input. The trajectories run in lockstep (one
gradient per step for both sides)."""

import functools

import pytest
import torch
from optim_lockstep import dense_grads, exact_on, lockstep, state_dict_handover
from optim_oracle import check_pure_step, kwargs_id, make_params, run, run_on_meta

from nnbolts.optim.rprop import Rprop, rprop_init, rprop_step

# torch's factors and bounds, and others whose bounds bind within the 300 steps
FACTORS = [dict(), dict(etas=(0.3, 1.7), step_sizes=(1e-3, 0.05))]
GRID = [dict(lr=0.01, maximize=maximize, **factors)
        for factors in FACTORS for maximize in (False, True)]
STATE_KEYS = ("step", "prev", "step_size")


def compare(kwargs, dtype, device, *, foreach=False, steps=300):
    """``steps`` steps in lockstep with one of torch's paths; on CPU every parameter and state
    tensor equal after every step."""
    grads = functools.partial(dense_grads, negate=kwargs.get("maximize", False))
    lockstep(lambda ps: Rprop(ps, foreach=foreach, **kwargs),
             lambda ps: torch.optim.Rprop(ps, foreach=foreach, **kwargs),
             make_params(dtype, device), grads, steps=steps, exact=exact_on(device),
             state_keys=STATE_KEYS, where=f"Rprop({kwargs_id(kwargs)}, foreach={foreach})")


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_rprop_matches_torch_over_300_steps(kwargs, dtype, device):
    compare(kwargs, dtype, device)


def test_torchs_multi_tensor_path_computes_the_same(dtype, device):
    """Ours has one path (``foreach`` is ignored); torch's multi-tensor one performs the same
    operations per tensor, so on CPU it is matched bit for bit too."""
    compare(dict(lr=0.02, etas=(0.4, 1.5), step_sizes=(1e-4, 0.1), maximize=True), dtype,
            device, foreach=True)


def test_defaults_are_torchs():
    ours = Rprop(make_params(torch.float64, "cpu")).defaults
    theirs = torch.optim.Rprop(make_params(torch.float64, "cpu")).defaults
    assert ours == theirs


def test_state_dict_round_trip(dtype, device):
    kwargs = dict(lr=0.01, etas=(0.3, 1.7), step_sizes=(1e-3, 0.05), maximize=True)
    state_dict_handover(Rprop, torch.optim.Rprop, kwargs, make_params(dtype, device),
                        functools.partial(dense_grads, negate=True), exact=exact_on(device))


def test_state_crosses_to_torch_and_back_with_torchs_types():
    params = make_params(torch.float64, "cpu")
    ours = run(lambda ps: Rprop(ps, lr=0.01), params, 7)
    state = ours.state[params[0]]
    theirs = torch.optim.Rprop(params, lr=0.01)
    theirs.load_state_dict(ours.state_dict())
    assert list(state) == list(theirs.state[params[0]]) == ["step", "prev", "step_size"]
    assert state["step"] == 7 and torch.is_tensor(theirs.state[params[0]]["step"])
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]
    back = Rprop(params, lr=0.01)
    back.load_state_dict(theirs.state_dict())
    assert back.state[params[0]]["step"] == 7 and isinstance(back.state[params[0]]["step"], int)


def test_lr_only_sets_the_initial_step_sizes():
    """Under a scheduler and with parameter groups, ours follows torch; and since ``lr`` only
    seeds ``step_size``, the scheduled run equals the unscheduled one."""
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02},
                         {"params": ps[2:], "etas": (0.4, 1.5), "step_sizes": (1e-4, 1.0)}]
    finals = []
    for cls, scheduled in ((Rprop, True), (torch.optim.Rprop, True), (Rprop, False)):
        params = make_params(torch.float64, "cpu")
        opt = cls(groups(params), lr=0.01)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, 0.9) if scheduled else None
        for k in range(60):
            dense_grads(params, k)
            opt.step()
            if scheduler is not None:
                scheduler.step()
        finals.append(params)
    for ours, theirs, unscheduled in zip(*finals):
        assert torch.equal(ours, theirs) and torch.equal(ours, unscheduled)


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    kwargs = dict(etas=(0.4, 1.5), step_sizes=(1e-3, 0.3), maximize=True)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = rprop_init(p, lr=0.05)
    opt_p = p.clone().requires_grad_()
    opt = Rprop([opt_p], lr=0.05, **kwargs)
    check_pure_step(rprop_step, p, state, opt, kwargs, gen)


def test_step_sizes_by_hand():
    """Same sign: Δ grows by c₊ up to Δ_max; a flip: Δ shrinks by c₋ (down to Δ_min), that
    weight does not move, and the next step treats it as having no previous gradient."""
    p = torch.zeros(1, dtype=torch.float64)
    state = rprop_init(p, lr=0.1)
    kwargs = dict(etas=(0.5, 2.0), step_sizes=(0.03, 0.5))
    expected = [  # (gradient, Δ after the step, θ after the step)
        (1.0, 0.1, -0.1),     # no previous gradient: Δ kept, step against the sign
        (2.0, 0.2, -0.3),     # same sign: Δ doubles
        (0.5, 0.4, -0.7),
        (3.0, 0.5, -1.2),     # capped at Δ_max
        (-1.0, 0.25, -1.2),   # flip: Δ halves, no step, prev ← 0
        (-1.0, 0.25, -0.95),  # no previous gradient: Δ kept
        (1.0, 0.125, -0.95),  # flip again
        (-1.0, 0.125, -0.825),
        (1.0, 0.0625, -0.825),
        (-1.0, 0.0625, -0.7625),
        (1.0, 0.03125, -0.7625),
        (-1.0, 0.03125, -0.73125),
        (1.0, 0.03, -0.73125),  # floored at Δ_min
    ]
    for g, delta, theta in expected:
        p, state = rprop_step(p, torch.tensor([g], dtype=torch.float64), state, **kwargs)
        assert state["step_size"].item() == pytest.approx(delta, rel=1e-15)
        assert p.item() == pytest.approx(theta, rel=1e-14)


def test_updates_ignore_the_gradients_size():
    a, b = torch.zeros(4), torch.zeros(4)
    sa, sb = rprop_init(a), rprop_init(b)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        g = torch.randn(4, generator=gen)
        a, sa = rprop_step(a, g, sa)
        b, sb = rprop_step(b, 1000.0 * g, sb)
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [{}, dict(maximize=True, foreach=True)], ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(Rprop, kwargs, steps=3)


def test_pure_step_on_meta():
    p = torch.empty(4, 3, device="meta")
    new_p, state = rprop_step(p, torch.empty_like(p), rprop_init(p))
    assert new_p.device.type == "meta" and state["step"] == 1
    assert state["prev"].device.type == "meta" and state["step_size"].device.type == "meta"


P = torch.zeros(3)
STATE = rprop_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Rprop([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: Rprop([P], lr=torch.tensor([0.1, 0.2])), ValueError,
     r"Tensor lr must be 1-element"),
    (lambda: Rprop([P], etas=(0.5, 1.0)), ValueError, r"Invalid eta values: 0.5, 1.0"),
    (lambda: Rprop([P], etas=(0.0, 1.2)), ValueError, r"Invalid eta values: 0.0, 1.2"),
    (lambda: Rprop([P], etas=1.2), ValueError, r"Invalid etas: 1.2 \(expected a pair"),
    (lambda: Rprop([P], etas=(0.5, "x")), TypeError,
     r"Invalid etas\[1\]: expected a number, got str"),
    (lambda: Rprop([P], step_sizes=(1.0, 0.1)), ValueError,
     r"Invalid step_sizes: 1.0, 0.1 \(expected 0 <= minimum <= maximum\)"),
    (lambda: Rprop([P], step_sizes=(-1e-6, 50)), ValueError, r"Invalid step_sizes: -1e-06, 50"),
    (lambda: Rprop([P], capturable=True), ValueError,
     r"capturable=True is not supported by nnbolts: the step count is a Python int"),
    (lambda: Rprop([P], differentiable=True), ValueError,
     r"differentiable=True is not supported by nnbolts"),
    (lambda: rprop_init(P, lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    (lambda: rprop_step(P, P, STATE, etas=(1.5, 2.0)), ValueError,
     r"Invalid eta values: 1.5, 2.0"),
    (lambda: rprop_step(P, torch.zeros(2), STATE), ValueError,
     r"grad has shape \(2,\) but param has shape \(3,\)"),
    (lambda: rprop_step(P, P, {"step": 0, "prev": P}), ValueError,
     r"state has no 'step_size'; create the state with rprop_init\(param, lr=lr\)"),
    (lambda: rprop_step(P, P, rprop_init(torch.zeros(3, dtype=torch.float64))), TypeError,
     r"state\['prev'\] has dtype torch.float64 but param has dtype torch.float32"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
