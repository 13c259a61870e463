"""Adafactor against torch.optim.Adafactor: factored second moments of matrices and 3-D tensors,
the relative step, update clipping, the eps pair, decoupled decay and maximize."""

import functools
import math

import pytest
import torch
from optim_lockstep import autograd_grads, dense_grads, exact_on, lockstep, state_dict_handover
from optim_oracle import (
    check_pure_step,
    compare_with_torch,
    kwargs_id,
    make_params,
    option_grid,
    run,
    run_on_meta,
)

from nnbolts.optim.adafactor import Adafactor, adafactor_init, adafactor_step

# Every switch of the rule: decay on/off, maximize, eps1 given or the dtype's machine epsilon,
# clipping active (d = 1: RMS(u) is often above 1) or never (d = 1e3). With lr = 0.2 the relative
# step min(lr, 1/√t) is 1/√t up to t = 25 and lr after, so both branches run.
GRID = option_grid(lr=[0.2], weight_decay=[0.0, 0.1], maximize=[False, True],
                   eps=[(None, 1e-3), (1e-6, 1e-2)], d=[1.0, 1e3])
STATE_KEYS = ("step", "row_var", "col_var", "variance")


def make(kwargs):
    return functools.partial(Adafactor, **kwargs), functools.partial(torch.optim.Adafactor,
                                                                     **kwargs)


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_adafactor_matches_torch_step_by_step_over_300_steps(kwargs, dtype, device):
    """Torch's operations in torch's order, with the same Python-float scalars: on the CPU every
    parameter equals torch's after every one of the 300 steps."""
    ours, theirs = make(kwargs)
    grads = functools.partial(dense_grads, negate=kwargs["maximize"])
    lockstep(ours, theirs, make_params(dtype, device), grads, exact=exact_on(device),
             state_keys=STATE_KEYS, where=f"Adafactor({kwargs_id(kwargs)})")


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.01, beta2_decay=-0.5, eps=(1e-30, 0.0)),
    dict(lr=1.0, beta2_decay=0.0, eps=(1e-3, 1e-3), d=2.0, weight_decay=0.5),
], ids=kwargs_id)
def test_other_hyperparameters_match_torch(kwargs):
    """beta2_decay = 0 makes β̂₂ = 0 (no averaging at all); eps2 = 0 lets a zero parameter stay
    put; a huge lr leaves the relative step at 1/√t."""
    ours, theirs = make(kwargs)
    lockstep(ours, theirs, make_params(torch.float64, "cpu"), dense_grads, steps=100,
             state_keys=STATE_KEYS)


def test_foreach_is_accepted_and_agrees_with_torchs_multi_tensor_path():
    """Ours has one path. Torch's multi-tensor path scales the update and adds it in two
    roundings (`_foreach_mul_` then `_foreach_add_`) where its one-tensor path adds with
    ``alpha`` in one, so it is not bit-identical to either: within 1e-10 in float64."""
    compare_with_torch(Adafactor, torch.optim.Adafactor, dict(lr=0.2, weight_decay=0.1,
                                                              foreach=True),
                       dtype=torch.float64, device="cpu", state_keys=STATE_KEYS)


@pytest.mark.parametrize("kwargs", [dict(lr=0.2),
                                    dict(lr=0.2, weight_decay=0.1, maximize=True, d=1e3)],
                         ids=kwargs_id)
def test_state_dict_both_ways(kwargs, dtype, device):
    grads = functools.partial(dense_grads, negate=kwargs.get("maximize", False))
    state_dict_handover(Adafactor, torch.optim.Adafactor, kwargs, make_params(dtype, device),
                        grads, exact=exact_on(device))


def test_state_crosses_to_torch_and_back_with_torchs_types():
    params = make_params(torch.float64, "cpu")
    ours = run(lambda ps: Adafactor(ps, lr=0.2), params, 7)
    matrix, vector, cube = (ours.state[p] for p in params[:3])
    assert list(matrix) == ["step", "row_var", "col_var"] and list(vector) == ["step", "variance"]
    assert matrix["row_var"].shape == (6, 1) and matrix["col_var"].shape == (1, 4)
    assert cube["row_var"].shape == (3, 2, 1) and cube["col_var"].shape == (3, 1, 2)
    assert matrix["step"] == 7 and type(matrix["step"]) is int

    theirs = torch.optim.Adafactor(params, lr=0.2)
    theirs.load_state_dict(ours.state_dict())
    loaded = theirs.state[params[0]]["step"]
    assert torch.is_tensor(loaded) and loaded.dtype == torch.float32 and loaded.item() == 7

    back = Adafactor(params, lr=0.2)
    back.load_state_dict(theirs.state_dict())
    assert type(back.state[params[0]]["step"]) is int and back.state[params[0]]["step"] == 7


def test_factored_state_is_a_row_and_a_column():
    """An n×k matrix keeps n + k second-moment numbers, and the estimate r cᵀ / mean(r) is exact
    for a gradient whose squares form a rank-one matrix."""
    p = torch.zeros(50, 30, dtype=torch.float64)
    state = adafactor_init(p)
    assert state["row_var"].numel() + state["col_var"].numel() == 50 + 30
    u = torch.linspace(0.5, 2.0, 50, dtype=torch.float64)
    w = torch.linspace(1.0, 3.0, 30, dtype=torch.float64)
    g = torch.outer(u, w)                                   # g² = (u²)(w²)ᵀ: rank one
    _, state = adafactor_step(p, g, state)                  # β̂₂,1 = 0: r, c are this step's
    estimate = state["row_var"] @ state["col_var"] / state["row_var"].mean()
    torch.testing.assert_close(estimate, g * g, rtol=1e-12, atol=0)


def test_first_step_against_hand_computation():
    """Step 1 of a vector: v̂ = g², u = sign(g), RMS(u) = 1 (no clipping), step size
    max(eps2, RMS(θ))·min(η, 1)."""
    p = torch.tensor([3.0, -4.0], dtype=torch.float64)
    g = torch.tensor([0.5, -2.0], dtype=torch.float64)
    new_p, state = adafactor_step(p, g, adafactor_init(p), lr=0.1, weight_decay=0.2)
    rms = math.sqrt((9 + 16) / 2)
    expected = [3.0 * (1 - 0.1 * 0.2) - 0.1 * rms, -4.0 * (1 - 0.1 * 0.2) + 0.1 * rms]
    assert new_p.tolist() == pytest.approx(expected, rel=1e-12)
    assert state["variance"].tolist() == [0.25, 4.0] and state["step"] == 1


def test_clipping_caps_the_update_rms_at_d():
    """The step after a quiet history meets a large gradient: unclipped, u would have RMS far above
    d; clipped, the parameter moves by exactly s_t·d in RMS."""
    p = torch.full((4,), 2.0, dtype=torch.float64)
    state = adafactor_init(p)
    p, state = adafactor_step(p, torch.full((4,), 1e-3, dtype=torch.float64), state, d=1.0)
    before = p.clone()
    p, state = adafactor_step(p, torch.full((4,), 1e3, dtype=torch.float64), state, d=1.0)
    step_size = max(1e-3, before.norm().item() / 2) * min(1e-2, 1 / math.sqrt(2))
    rms_move = ((p - before).norm() / 2).item()
    assert rms_move == pytest.approx(step_size * 1.0, rel=1e-12)


def test_works_under_lr_scheduler_and_param_groups():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "lr": 0.3},
                         {"params": ps[2:], "weight_decay": 0.1, "d": 2.0}]
    oa = Adafactor(groups(a), lr=0.2)
    ob = torch.optim.Adafactor(groups(b), lr=0.2)
    run(oa, a, 60, scheduler=torch.optim.lr_scheduler.StepLR(oa, 20, gamma=0.5))
    run(ob, b, 60, scheduler=torch.optim.lr_scheduler.StepLR(ob, 20, gamma=0.5))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@pytest.mark.parametrize("shape", [(5, 3), (4,), (2, 3, 4), ()], ids=str)
def test_pure_step_matches_class_and_does_not_mutate(shape, dtype, device):
    kwargs = dict(lr=0.3, weight_decay=0.01, maximize=True, d=1.5)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(shape, generator=gen, dtype=dtype).to(device)
    state = adafactor_init(p)
    opt_p = p.clone().requires_grad_()
    opt = Adafactor([opt_p], **kwargs)
    check_pure_step(adafactor_step, p, state, opt, kwargs, gen, steps=10)


@pytest.mark.parametrize("kwargs", [{}, dict(weight_decay=0.1, maximize=True, eps=(1e-6, 0.1)),
                                    dict(foreach=True)], ids=kwargs_id)
def test_meta_device(kwargs):
    """Torch reads two norms to the host, which a meta tensor cannot give (torch's own Adafactor
    fails on meta); ours substitutes a value and still builds the whole state on meta."""
    run_on_meta(Adafactor, kwargs)


def test_pure_step_on_meta():
    p = torch.empty(4, 3, device="meta")
    new_p, state = adafactor_step(p, torch.empty_like(p), adafactor_init(p), weight_decay=0.1)
    assert new_p.device.type == "meta" and state["step"] == 1
    assert state["row_var"].device.type == "meta" and state["col_var"].shape == (1, 3)


P = torch.zeros(3)
STATE = adafactor_init(P)
M = torch.zeros(2, 3)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Adafactor([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: Adafactor([P], beta2_decay=0.5), ValueError, r"Invalid beta2_decay value: 0.5"),
    (lambda: Adafactor([P], eps=(-1.0, 1e-3)), ValueError,
     r"Invalid eps\[0\] \(epsilon1\) value: -1.0"),
    (lambda: Adafactor([P], eps=(None, -1e-3)), ValueError,
     r"Invalid eps\[1\] \(epsilon2\) value: -0.001"),
    (lambda: Adafactor([P], eps=1e-3), ValueError, r"Invalid eps: 0.001 \(expected a pair"),
    (lambda: Adafactor([P], d=0.5), ValueError, r"Invalid clipping threshold d: 0.5"),
    (lambda: Adafactor([P], weight_decay=-0.1), ValueError, r"Invalid weight_decay value: -0.1"),
    (lambda: Adafactor([P], d="big"), TypeError,
     r"Invalid clipping threshold d: expected a number, got str"),
    (lambda: adafactor_step(P, P, STATE, lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    (lambda: adafactor_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                            STATE), TypeError, r"expected a floating tensor for param"),
    (lambda: adafactor_step(P, torch.zeros(2), STATE), ValueError,
     r"grad has shape \(2,\) but param has shape \(3,\)"),
    (lambda: adafactor_step(M, M, STATE), ValueError,
     r"state has no 'row_var'; create the state with adafactor_init\(param\)"),
    (lambda: adafactor_step(M, M, adafactor_init(torch.zeros(3, 3))), ValueError,
     r"state\['row_var'\] has shape \(3, 1\) but a param of shape \(2, 3\) needs \(2, 1\)"),
    (lambda: adafactor_step(P, P, adafactor_init(P.double())), TypeError,
     r"state\['variance'\] has dtype torch.float64 but param has dtype torch.float32"),
    (lambda: adafactor_step(P, P, STATE | {"step": 1.0}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got 1.0"),
    (lambda: adafactor_step(P, P, "state"), TypeError, r"expected state to be a dict"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_complex_parameters_are_refused_like_torch():
    z = torch.zeros(3, dtype=torch.complex64, requires_grad=True)
    opt = Adafactor([z])
    z.grad = torch.ones_like(z)
    with pytest.raises(RuntimeError, match="Adafactor does not support complex parameters"):
        opt.step()


def test_the_lockstep_gradient_is_the_oracle_objectives(dtype):
    """optim_lockstep.dense_grads writes out the gradient that autograd takes of the oracle's
    objective (they differ by rounding only)."""
    a, b = make_params(dtype, "cpu"), make_params(dtype, "cpu")
    for negate in (False, True):
        dense_grads(a, 5, negate=negate)
        autograd_grads(b, 5, negate=negate)
        for x, y in zip(a[:-1], b[:-1]):
            torch.testing.assert_close(x.grad, y.grad)
        assert a[-1].grad is None and b[-1].grad is None
