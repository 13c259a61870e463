"""NAdam against torch.optim.NAdam, including the float ``mu_product`` that crosses to torch."""

import math

import pytest
import torch
from optim_oracle import (
    check_pure_step,
    compare_with_torch,
    kwargs_id,
    make_params,
    option_grid,
    run,
    run_on_meta,
    state_dict_round_trip,
)

from nnbolts.optim.nadam import NAdam, nadam_init, nadam_step

# Decoupled decay of zero is the same rule as L2 decay of zero: that combination is left out.
GRID = [
    kw for kw in option_grid(lr=[0.01], weight_decay=[0, 0.05], momentum_decay=[4e-3, 0.1],
                             decoupled_weight_decay=[False, True], maximize=[False, True])
    if kw["weight_decay"] or not kw["decoupled_weight_decay"]
]
TENSOR_KEYS = ("step", "exp_avg", "exp_avg_sq")


def assert_same_mu_product(ours, theirs):
    """Ours is a Python float, torch's a float32 tensor holding the same value."""
    for po, pt in zip(ours.param_groups[0]["params"], theirs.param_groups[0]["params"]):
        so, st = ours.state.get(po), theirs.state.get(pt)
        if st:
            assert isinstance(so["mu_product"], float)
            assert so["mu_product"] == st["mu_product"].item()


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_nadam_matches_torch_over_300_steps(kwargs, dtype, device):
    o, t = compare_with_torch(NAdam, torch.optim.NAdam, kwargs, dtype=dtype, device=device,
                              state_keys=TENSOR_KEYS)
    assert_same_mu_product(o, t)
    if torch.device(device).type == "cpu":  # torch's operations in torch's order: equal
        for po, pt in zip(o.param_groups[0]["params"], t.param_groups[0]["params"]):
            assert torch.equal(po, pt)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.1, decoupled_weight_decay=True),
    dict(lr=0.003, betas=(0.0, 0.0), eps=0.0, momentum_decay=0.0),
], ids=kwargs_id)
def test_nadam_other_hyperparameters_match_torch(kwargs):
    compare_with_torch(NAdam, torch.optim.NAdam, kwargs, dtype=torch.float64, device="cpu",
                       state_keys=TENSOR_KEYS)


def test_foreach_is_accepted_and_agrees_with_torchs_multi_tensor_path():
    """Ours has one path; torch's multi-tensor path rounds the root differently (√v/√(1−β₂ᵗ)
    instead of √(v/(1−β₂ᵗ))), which stays far inside the oracle's tolerance."""
    o, t = compare_with_torch(NAdam, torch.optim.NAdam, dict(lr=0.01, foreach=True),
                              dtype=torch.float64, device="cpu", state_keys=TENSOR_KEYS)
    assert_same_mu_product(o, t)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.01), dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True),
], ids=kwargs_id)
def test_state_dict_round_trip(kwargs, dtype, device):
    state_dict_round_trip(NAdam, torch.optim.NAdam, kwargs, dtype=dtype, device=device)


def test_state_crosses_to_torch_and_back_with_torchs_types():
    ours_params = make_params(torch.float64, "cpu")
    ours = run(lambda ps: NAdam(ps, lr=0.01), ours_params, 7)
    state = ours.state[ours_params[0]]
    assert list(state) == ["step", "mu_product", "exp_avg", "exp_avg_sq"]
    assert state["step"] == 7 and isinstance(state["mu_product"], float)

    theirs = torch.optim.NAdam(ours_params, lr=0.01)
    theirs.load_state_dict(ours.state_dict())
    loaded = theirs.state[ours_params[0]]
    assert torch.is_tensor(loaded["mu_product"]) and loaded["mu_product"].dtype == torch.float32
    assert loaded["mu_product"].item() == state["mu_product"]

    back = NAdam(ours_params, lr=0.01)
    back.load_state_dict(theirs.state_dict())
    again = back.state[ours_params[0]]
    assert again["step"] == 7 and again["mu_product"] == state["mu_product"]
    assert isinstance(again["mu_product"], float) and isinstance(again["step"], int)


def test_works_under_lr_scheduler_and_param_groups():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02},
                         {"params": ps[2:], "momentum_decay": 0.01, "weight_decay": 0.1}]
    oa = NAdam(groups(a), lr=0.01)
    ob = torch.optim.NAdam(groups(b), lr=0.01)
    run(oa, a, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(oa, 100))
    run(ob, b, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(ob, 100))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    kwargs = dict(lr=0.05, weight_decay=0.01, momentum_decay=0.01, maximize=True)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = nadam_init(p)
    opt_p = p.clone().requires_grad_()
    opt = NAdam([opt_p], **kwargs)
    check_pure_step(nadam_step, p, state, opt, kwargs, gen)


def test_first_step_against_hand_computation():
    """Step 1 of the update written out with Python floats (ε = 0, no float32 rounding needed
    to this tolerance)."""
    lr, b1, psi, g = 0.1, 0.9, 4e-3, 0.5
    mu1 = b1 * (1 - 0.5 * 0.96 ** (1 * psi))
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    m, v_hat = (1 - b1) * g, g * g          # v̂ = (1−β₂)g² / (1−β₂) = g²
    expected = 1.0 - lr * (1 - mu1) / (1 - mu1) * g / math.sqrt(v_hat) \
        - lr * mu2 / (1 - mu1 * mu2) * m / math.sqrt(v_hat)
    p = torch.tensor([1.0], dtype=torch.float64)
    new_p, state = nadam_step(p, torch.tensor([g], dtype=torch.float64), nadam_init(p), lr=lr,
                              eps=0.0)
    assert math.isclose(new_p.item(), expected, rel_tol=1e-6)
    assert math.isclose(state["mu_product"], mu1, rel_tol=1e-7)


def test_momentum_schedule_warms_up_towards_beta1():
    """With a large momentum_decay, μ_t = β₁(1 − ½·0.96^{tψ}) climbs from β₁/2 to β₁, so the
    running product's ratio between successive steps does too."""
    p = torch.zeros(1, dtype=torch.float64)
    state, ratios, previous = nadam_init(p), [], 1.0
    for _ in range(60):
        p, state = nadam_step(p, torch.ones(1, dtype=torch.float64), state, momentum_decay=1.0)
        ratios.append(state["mu_product"] / previous)
        previous = state["mu_product"]
    assert ratios[0] == pytest.approx(0.9 * (1 - 0.5 * 0.96), rel=1e-6)
    assert all(a < b for a, b in zip(ratios[:20], ratios[1:21]))
    assert ratios[-1] == pytest.approx(0.9 * (1 - 0.5 * 0.96 ** 60), rel=1e-5)


@pytest.mark.parametrize("kwargs", [{}, dict(weight_decay=0.1, decoupled_weight_decay=True),
                                    dict(foreach=True, maximize=True)], ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(NAdam, kwargs)


def test_pure_step_on_meta():
    p = torch.empty(4, 3, device="meta")
    new_p, state = nadam_step(p, torch.empty_like(p), nadam_init(p), weight_decay=0.1)
    assert new_p.device.type == "meta" and state["step"] == 1
    assert state["exp_avg"].device.type == "meta" and state["exp_avg_sq"].device.type == "meta"


P = torch.zeros(3)
STATE = nadam_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: NAdam([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: NAdam([P], eps=-1.0), ValueError, r"Invalid epsilon value: -1.0"),
    (lambda: NAdam([P], betas=(1.5, 0.9)), ValueError, r"Invalid beta parameter at index 0: 1.5"),
    (lambda: NAdam([P], betas=(0.9, 1.0)), ValueError, r"Invalid beta parameter at index 1: 1.0"),
    (lambda: NAdam([P], weight_decay=-0.1), ValueError, r"Invalid weight_decay value: -0.1"),
    (lambda: NAdam([P], momentum_decay=-4e-3), ValueError,
     r"Invalid momentum_decay value: -0.004"),
    (lambda: NAdam([P], momentum_decay="slow"), TypeError,
     r"Invalid momentum_decay value: expected a number, got str"),
    (lambda: nadam_step(P, P, STATE, lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    (lambda: nadam_step(P, P, STATE, momentum_decay=-1), ValueError,
     r"Invalid momentum_decay value: -1"),
    (lambda: nadam_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                        STATE), TypeError, r"expected a floating tensor for param, got torch.int"),
    (lambda: nadam_step(P, torch.zeros(2), STATE), ValueError,
     r"grad has shape \(2,\) but param has shape \(3,\)"),
    (lambda: nadam_step(P, torch.zeros(3, dtype=torch.float64), STATE), TypeError,
     r"grad has dtype torch.float64 but param has dtype torch.float32"),
    (lambda: nadam_step(P, P, {"step": 0}), ValueError,
     r"state has no 'mu_product'; create the state with nadam_init\(param\)"),
    (lambda: nadam_step(P, P, STATE | {"mu_product": torch.tensor(1.0)}), TypeError,
     r"expected state\['mu_product'\] to be a Python float, got Tensor"),
    (lambda: nadam_step(P, P, STATE | {"step": 1.0}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got 1.0"),
    (lambda: nadam_step(P, P, nadam_init(torch.zeros(4))), ValueError,
     r"state\['exp_avg'\] has shape \(4,\) but param has shape \(3,\)"),
    (lambda: nadam_step(P, P, "state"), TypeError, r"expected state to be a dict"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
