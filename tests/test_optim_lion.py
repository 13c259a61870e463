"""Lion against its authors' PyTorch port, ``lion_pytorch.Lion`` (lion-pytorch 0.2.5)."""

import lion_pytorch
import pytest
import torch
from optim_oracle import (
    compare_with_torch,
    kwargs_id,
    make_params,
    run,
    run_on_meta,
    state_dict_round_trip,
)

from nnbolts.optim import Lion, lion_init, lion_step

# Every option once: plain, coupled decay with other betas, decoupled decay.
GRID = [
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.95, 0.98), weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
]
KEYS = ("exp_avg",)


def assert_equal_params(ours, theirs):
    for po, pt in zip(ours.param_groups[0]["params"], theirs.param_groups[0]["params"]):
        assert torch.equal(po, pt)


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_lion_matches_the_reference_over_300_steps(kwargs, dtype, device):
    o, t = compare_with_torch(Lion, lion_pytorch.Lion, kwargs, dtype=dtype, device=device,
                              state_keys=KEYS)
    if torch.device(device).type == "cpu":  # the reference's operations in its order: equal
        assert_equal_params(o, t)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.02, betas=(0.0, 0.5)),            # β₁ = 0: signSGD with a useless momentum
    dict(lr=0.02, betas=(1.0, 0.9)),            # β₁ = 1: the sign of the momentum alone
    dict(lr=0.005, betas=(0.5, 1.0), weight_decay=1.0, decoupled_weight_decay=True),
], ids=kwargs_id)
def test_edge_hyperparameters_match_the_reference(kwargs):
    o, t = compare_with_torch(Lion, lion_pytorch.Lion, kwargs, dtype=torch.float64,
                              device="cpu", steps=100, state_keys=KEYS)
    assert_equal_params(o, t)


def test_tensor_lr_matches_the_reference():
    kwargs = dict(lr=torch.tensor(0.01), weight_decay=0.1, decoupled_weight_decay=True)
    o, t = compare_with_torch(Lion, lion_pytorch.Lion, kwargs, dtype=torch.float32,
                              device="cpu", steps=50, state_keys=KEYS)
    assert_equal_params(o, t)


def test_tensor_lr_under_a_scheduler_decays_like_a_float_lr():
    """torch's schedulers change a tensor lr in place; the initial rate that divides λ must not
    follow (lion-pytorch keeps the very tensor, so its decay would stop following the
    schedule: the one place where this class departs from the reference)."""
    runs = []
    for lr in (0.01, torch.tensor(0.01, dtype=torch.float64)):
        params = make_params(torch.float64, "cpu")
        opt = Lion(params, lr=lr, weight_decay=0.5, decoupled_weight_decay=True)
        run(opt, params, 40, scheduler=torch.optim.lr_scheduler.StepLR(opt, 10, gamma=0.5))
        runs.append(params)
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("kwargs", [dict(lr=0.01, weight_decay=0.1,
                                         decoupled_weight_decay=True)], ids=kwargs_id)
def test_state_dict_round_trip(kwargs, dtype, device):
    state_dict_round_trip(Lion, lion_pytorch.Lion, kwargs, dtype=dtype, device=device,
                          steps=100)


def test_state_has_the_references_one_key():
    params = make_params(torch.float64, "cpu")
    ours = run(lambda ps: Lion(ps, lr=0.01), params, 3)
    assert list(ours.state[params[0]]) == ["exp_avg"]
    theirs = lion_pytorch.Lion(params, lr=0.01)
    theirs.load_state_dict(ours.state_dict())
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]


def test_decoupled_decay_uses_the_constructors_lr_under_a_schedule_and_groups():
    """The reference divides λ by the constructor's lr in every group and at every step."""
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02},
                         {"params": ps[2:], "weight_decay": 0.3, "betas": (0.8, 0.95)}]
    kwargs = dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)
    oa, ob = Lion(groups(a), **kwargs), lion_pytorch.Lion(groups(b), **kwargs)
    run(oa, a, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(oa, 100))
    run(ob, b, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(ob, 100))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    kwargs = dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = lion_init(p)
    opt_p = p.clone().requires_grad_()
    opt = Lion([opt_p], **kwargs)
    for _ in range(20):
        g = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
        p_before, g_before, m_before = p.clone(), g.clone(), state["exp_avg"].clone()
        new_p, new_state = lion_step(p, g, state, **kwargs)
        assert torch.equal(p, p_before) and torch.equal(g, g_before), "inputs were mutated"
        assert torch.equal(state["exp_avg"], m_before), "state was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        assert torch.equal(new_state["exp_avg"], opt.state[opt_p]["exp_avg"])
        p, state = new_p, new_state


def test_first_steps_against_hand_computation():
    """Every coordinate moves by exactly η (or not at all where c = 0), and the decay shrinks
    first: θ ← (1 − ηλ)θ − η sign(c); decoupled, λ is divided by the initial rate."""
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    g = torch.tensor([0.5, -1e-12, 0.0], dtype=torch.float64)
    new_p, s = lion_step(p, g, lion_init(p), lr=0.1, weight_decay=0.5)
    assert new_p.tolist() == pytest.approx([0.95 - 0.1, -1.9 + 0.1, 2.85])
    assert s["exp_avg"].tolist() == pytest.approx([0.005, -1e-14, 0.0])
    # the second step's interpolation c = β₁m + (1−β₁)g uses β₁ = 0.9, the momentum β₂ = 0.99
    g2 = torch.tensor([-0.01, 1.0, 0.0], dtype=torch.float64)
    c = 0.9 * s["exp_avg"] + 0.1 * g2
    p2, s2 = lion_step(new_p, g2, s, lr=0.1)
    assert torch.equal(p2, new_p - 0.1 * torch.sign(c))
    assert s2["exp_avg"].tolist() == pytest.approx((0.99 * s["exp_avg"] + 0.01 * g2).tolist())
    half, _ = lion_step(p, g, lion_init(p), lr=0.05, weight_decay=0.5,
                        decoupled_weight_decay=True, initial_lr=0.1)
    assert half.tolist() == pytest.approx([(1 - 0.25) - 0.05, -2 * 0.75 + 0.05, 3 * 0.75])


@pytest.mark.parametrize("kwargs", [{}, dict(weight_decay=0.1, decoupled_weight_decay=True)],
                         ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(Lion, kwargs)


def test_pure_step_on_meta():
    p = torch.empty(4, 3, device="meta")
    new_p, state = lion_step(p, torch.empty_like(p), lion_init(p), weight_decay=0.1)
    assert new_p.device.type == "meta" and state["exp_avg"].device.type == "meta"


P = torch.zeros(3)
STATE = lion_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Lion([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: Lion([P], lr="fast"), TypeError, r"Invalid learning rate: expected a number"),
    (lambda: Lion([P], lr=0.0, weight_decay=0.1, decoupled_weight_decay=True), ValueError,
     r"Invalid learning rate: 0.0 \(decoupled weight decay divides by the initial"),
    (lambda: Lion([P], betas=(1.5, 0.9)), ValueError, r"Invalid beta parameter at index 0: 1.5"),
    (lambda: Lion([P], betas=(0.9, -0.1)), ValueError,
     r"Invalid beta parameter at index 1: -0.1"),
    (lambda: Lion([P], betas=0.9), ValueError, r"Invalid betas: 0.9"),
    (lambda: Lion([P], weight_decay=-0.1), ValueError, r"Invalid weight_decay value: -0.1"),
    (lambda: Lion([P], decoupled_weight_decay=1), TypeError,
     r"expected decoupled_weight_decay to be a bool"),
    (lambda: lion_step(P, P, STATE, lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    (lambda: lion_step(P, P, STATE, weight_decay=0.1, decoupled_weight_decay=True,
                       initial_lr=0), ValueError, r"Invalid learning rate: 0"),
    (lambda: lion_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                       STATE), TypeError, r"expected a floating tensor for param"),
    (lambda: lion_step(P, torch.zeros(2), STATE), ValueError,
     r"grad has shape \(2,\) but param has shape \(3,\)"),
    (lambda: lion_step(P, P, {}), ValueError,
     r"state has no 'exp_avg'; create the state with lion_init\(param\)"),
    (lambda: lion_step(P, P, lion_init(torch.zeros(4))), ValueError,
     r"state\['exp_avg'\] has shape \(4,\) but param has shape \(3,\)"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
