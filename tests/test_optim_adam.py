"""Adam and AdamW against torch.optim.Adam / AdamW; the multi-tensor path against the one-tensor
rule; the textbook's ε-inside-the-root variant against hand computation."""

import math

import pytest
import torch
from optim_oracle import (
    check_pure_step,
    compare_with_torch,
    kwargs_id,
    make_params,
    objective,
    option_grid,
    run,
    run_on_meta,
    state_dict_round_trip,
)

from nnbolts.optim.adam import (
    Adam,
    AdamW,
    adam_init,
    adam_step,
    adamw_init,
    adamw_step,
)

# Decoupled decay of zero is the same rule as L2 decay of zero: that combination is left out.
ADAM_GRID = [
    kw for kw in option_grid(lr=[0.01], weight_decay=[0, 0.05], amsgrad=[False, True],
                             maximize=[False, True], decoupled_weight_decay=[False, True],
                             foreach=[False, True])
    if kw["weight_decay"] or not kw["decoupled_weight_decay"]
]
# AdamW without decay is Adam (checked above and in test_adamw_is_adam_with_decoupled_...)
ADAMW_GRID = option_grid(lr=[0.01], weight_decay=[0.05], amsgrad=[False, True],
                         maximize=[False, True], foreach=[False, True])
STATE_KEYS = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def assert_bit_identical_on_cpu(ours, theirs, device):
    """On CPU nnbolts runs torch's operations in torch's order: the parameters are equal."""
    if torch.device(device).type != "cpu":
        return  # GPU kernels may fuse differently; the oracle's tolerances apply there
    for po, pt in zip(ours.param_groups[0]["params"], theirs.param_groups[0]["params"]):
        assert torch.equal(po, pt)


@pytest.mark.parametrize("kwargs", ADAM_GRID, ids=kwargs_id)
def test_adam_matches_torch_over_300_steps(kwargs, dtype, device):
    o, t = compare_with_torch(Adam, torch.optim.Adam, kwargs, dtype=dtype, device=device,
                              state_keys=STATE_KEYS)
    assert_bit_identical_on_cpu(o, t, device)


@pytest.mark.parametrize("kwargs", ADAMW_GRID, ids=kwargs_id)
def test_adamw_matches_torch_over_300_steps(kwargs, dtype, device):
    o, t = compare_with_torch(AdamW, torch.optim.AdamW, kwargs, dtype=dtype, device=device,
                              state_keys=STATE_KEYS)
    assert_bit_identical_on_cpu(o, t, device)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.1),
    dict(lr=0.003, betas=(0.0, 0.0), eps=0.0, amsgrad=True),
    dict(lr=0.02, betas=(0.95, 0.9999), eps=1e-6, foreach=True),
], ids=kwargs_id)
def test_adam_other_hyperparameters_match_torch(kwargs):
    compare_with_torch(Adam, torch.optim.Adam, kwargs, dtype=torch.float64, device="cpu",
                       state_keys=STATE_KEYS)


# --------------------------------------------------------------------------------------------
# the multi-tensor path
# --------------------------------------------------------------------------------------------

FOREACH_GRID = [
    kw for kw in option_grid(weight_decay=[0, 0.05], amsgrad=[False, True],
                             maximize=[False, True], decoupled_weight_decay=[False, True],
                             eps_inside_sqrt=[False, True])
    if kw["weight_decay"] or not kw["decoupled_weight_decay"]
]


def _drive(opt, params, steps, *, negate=False, skip_odd=False):
    """``steps`` updates with cheap seeded gradients set directly (no autograd), so that long
    runs over many option combinations stay fast. The last parameter never gets a gradient;
    with ``skip_odd`` the second gets one only on even steps, so step counts differ."""
    gen = torch.Generator().manual_seed(7)
    for k in range(steps):
        for i, p in enumerate(params[:-1]):
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
            g = (i + 1) * (p.detach() - 0.5) + 0.05 * p.detach() ** 3 + 0.1 * noise
            p.grad = -g if negate else g
        if skip_odd and k % 2:
            params[1].grad = None
        opt.step()
    return opt


@pytest.mark.parametrize("kwargs", FOREACH_GRID, ids=kwargs_id)
def test_foreach_path_equals_one_tensor_rule(kwargs):
    negate = kwargs["maximize"]
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    oa = _drive(Adam(a, lr=0.01, foreach=True, **kwargs), a, 250, negate=negate)
    ob = _drive(Adam(b, lr=0.01, foreach=False, **kwargs), b, 250, negate=negate)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    for x, y in zip(a[:-1], b[:-1]):
        sa, sb = oa.state[x], ob.state[y]
        assert sa.keys() == sb.keys() and sa["step"] == sb["step"] == 250
        assert all(torch.equal(sa[k], sb[k]) for k in sa if k != "step")


@pytest.mark.parametrize("kwargs", [dict(amsgrad=False), dict(amsgrad=True, weight_decay=0.1),
                                    dict(eps_inside_sqrt=True, maximize=True)], ids=kwargs_id)
def test_foreach_path_with_unequal_step_counts(kwargs):
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    oa = _drive(Adam(a, lr=0.01, foreach=True, **kwargs), a, 200, skip_odd=True)
    _drive(Adam(b, lr=0.01, foreach=False, **kwargs), b, 200, skip_odd=True)
    assert oa.state[a[0]]["step"] == 200 and oa.state[a[1]]["step"] == 100
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    if not kwargs.get("eps_inside_sqrt"):
        c = make_params(torch.float64, "cpu")
        _drive(torch.optim.Adam(c, lr=0.01, foreach=True, **kwargs), c, 200, skip_odd=True)
        for x, z in zip(a, c):
            assert torch.equal(x, z)


def test_foreach_path_with_mixed_dtypes_in_one_group():
    def params():
        gen = torch.Generator().manual_seed(5)
        return [torch.randn(4, 3, generator=gen).requires_grad_(),
                torch.randn(5, generator=gen, dtype=torch.float64).requires_grad_(),
                torch.randn(2, 2, generator=gen).requires_grad_()]

    a, b = params(), params()
    oa = Adam(a, lr=0.01, weight_decay=0.1, foreach=True)
    ob = Adam(b, lr=0.01, weight_decay=0.1, foreach=False)
    for k in range(50):
        for ps, opt in ((a, oa), (b, ob)):
            opt.zero_grad()
            sum(((p - k / 50) ** 2).sum() for p in ps).backward()
            opt.step()
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and torch.equal(x, y)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", [dict(maximize=True, weight_decay=0.1),
                                    dict(weight_decay=0.1), dict(maximize=True)],
                         ids=kwargs_id)
def test_gradients_are_not_modified(foreach, kwargs):
    params = make_params(torch.float64, "cpu")
    opt = Adam(params, lr=0.01, foreach=foreach, **kwargs)
    for k in range(3):
        opt.zero_grad()
        objective(params, k).backward()
        before = [p.grad.clone() for p in params[:-1]]
        opt.step()
        assert all(torch.equal(p.grad, g) for p, g in zip(params, before))


def test_foreach_none_follows_torchs_choice(device):
    """Like torch: the multi-tensor path by default on CUDA-like devices, never on CPU."""
    p = torch.zeros(3, device=device, requires_grad=True)
    for foreach, expected in ((None, torch.device(device).type in ("cuda", "xpu")),
                              (True, True), (False, False)):
        for cls in (Adam, AdamW):
            opt = cls([p], foreach=foreach)
            assert opt._use_foreach(opt.param_groups[0], [p]) is expected


# --------------------------------------------------------------------------------------------
# state dicts, schedulers, param groups
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,torch_cls,kwargs", [
    (Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    (Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True,
                                  foreach=True)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01, amsgrad=True)),
], ids=lambda v: v.__name__ if isinstance(v, type) else kwargs_id(v))
def test_state_dict_round_trip(cls, torch_cls, kwargs, dtype, device):
    state_dict_round_trip(cls, torch_cls, kwargs, dtype=dtype, device=device)


def test_state_keys_are_torchs():
    p = torch.zeros(2, 3)
    assert list(adam_init(p)) == ["step", "exp_avg", "exp_avg_sq"]
    assert list(adam_init(p, amsgrad=True)) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    assert adam_init(p)["step"] == 0 and adamw_init(p).keys() == adam_init(p).keys()
    for amsgrad in (False, True):
        ours, theirs = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
        o, t = Adam([ours], amsgrad=amsgrad), torch.optim.Adam([theirs], amsgrad=amsgrad)
        for q, opt in ((ours, o), (theirs, t)):
            q.grad = torch.ones(3)
            opt.step()
        assert list(o.state[ours]) == list(t.state[theirs])
        assert o.state_dict()["param_groups"][0].keys() <= (
            t.state_dict()["param_groups"][0].keys() | {"eps_inside_sqrt"})


def test_adamw_is_adam_with_decoupled_weight_decay():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    run(lambda ps: AdamW(ps, lr=0.01, weight_decay=0.1, amsgrad=True), a, 100)
    run(lambda ps: Adam(ps, lr=0.01, weight_decay=0.1, amsgrad=True,
                        decoupled_weight_decay=True), b, 100)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_adamw_keeps_decoupled_decay_when_loading_an_adam_state():
    params = make_params(torch.float64, "cpu")
    saved = run(lambda ps: Adam(ps, lr=0.01, weight_decay=0.1), params, 5).state_dict()
    opt = AdamW(params, lr=0.01, weight_decay=0.1)
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_loading_a_torch_state_dict_fills_the_textbook_switch():
    params = make_params(torch.float64, "cpu")
    saved = run(lambda ps: torch.optim.Adam(ps, lr=0.01), params, 5).state_dict()
    opt = Adam(params, lr=0.01)
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["eps_inside_sqrt"] is False
    assert opt.state[params[0]]["step"] == 5 and isinstance(opt.state[params[0]]["step"], int)


@pytest.mark.parametrize("cls,torch_cls", [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)])
@pytest.mark.parametrize("foreach", [False, True])
def test_works_under_lr_scheduler_and_param_groups(cls, torch_cls, foreach):
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02},
                         {"params": ps[2:], "betas": (0.8, 0.99), "amsgrad": True}]
    oa = cls(groups(a), lr=0.01, weight_decay=0.01, foreach=foreach)
    ob = torch_cls(groups(b), lr=0.01, weight_decay=0.01, foreach=foreach)
    run(oa, a, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(oa, 100))
    run(ob, b, 100, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(ob, 100))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


# --------------------------------------------------------------------------------------------
# the pure functions
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("step_fn,cls,kwargs", [
    (adam_step, Adam, dict(lr=0.05, weight_decay=0.01, amsgrad=True, maximize=True)),
    (adam_step, Adam, dict(lr=0.05, decoupled_weight_decay=True, weight_decay=0.1)),
    (adam_step, Adam, dict(lr=0.05, eps_inside_sqrt=True, eps=1e-4)),
    (adamw_step, AdamW, dict(lr=0.05, amsgrad=True)),
], ids=lambda v: getattr(v, "__name__", None) or kwargs_id(v))
def test_pure_step_matches_class_and_does_not_mutate(step_fn, cls, kwargs, dtype, device):
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = adam_init(p, amsgrad=kwargs.get("amsgrad", False))
    opt_p = p.clone().requires_grad_()
    opt = cls([opt_p], **kwargs)
    check_pure_step(step_fn, p, state, opt, kwargs, gen)


def test_eps_inside_sqrt_against_hand_computation():
    """Two steps of Adam with ε inside the root, written out with Python floats."""
    lr, rho1, rho2, delta = 0.1, 0.9, 0.999, 0.01
    theta, s, r = 1.0, 0.0, 0.0
    p = torch.tensor([theta], dtype=torch.float64)
    state = adam_init(p)
    for t, g in enumerate([0.5, -0.25], start=1):
        s = rho1 * s + (1 - rho1) * g
        r = rho2 * r + (1 - rho2) * g * g
        s_hat, r_hat = s / (1 - rho1 ** t), r / (1 - rho2 ** t)
        theta = theta - lr * s_hat / math.sqrt(r_hat + delta)
        p, state = adam_step(p, torch.tensor([g], dtype=torch.float64), state, lr=lr,
                             betas=(rho1, rho2), eps=delta, eps_inside_sqrt=True)
        assert math.isclose(p.item(), theta, rel_tol=1e-14)
    # the same two steps in torch's form differ: 1.0 - 0.1*0.5/(0.5+0.01) after the first
    p = torch.tensor([1.0], dtype=torch.float64)
    p, _ = adam_step(p, torch.tensor([0.5], dtype=torch.float64), adam_init(p), lr=lr,
                     betas=(rho1, rho2), eps=delta)
    assert math.isclose(p.item(), 1.0 - 0.1 * 0.5 / (0.5 + 0.01), rel_tol=1e-14)


def test_eps_placement_matters_only_for_tiny_gradients():
    """With ε = 1e-8 the forms agree for ordinary gradients; for gradients near √ε = 1e-4 and
    below, the textbook form shrinks its steps like SGD while torch's keeps steps of about lr."""
    def first_step(scale, inside):
        p = torch.zeros(1, dtype=torch.float64)
        g = torch.full((1,), scale, dtype=torch.float64)
        new_p, _ = adam_step(p, g, adam_init(p), lr=1.0, eps_inside_sqrt=inside)
        return -new_p.item()

    assert math.isclose(first_step(1.0, False), first_step(1.0, True), rel_tol=1e-7)
    assert math.isclose(first_step(1e-2, False), first_step(1e-2, True), rel_tol=1e-3)
    assert first_step(1e-6, False) > 0.99                    # sign-like: a step of ~lr
    assert first_step(1e-6, True) == pytest.approx(1e-6 / math.sqrt(1e-12 + 1e-8), rel=1e-12)
    assert first_step(1e-6, True) < 0.02


def test_amsgrad_keeps_the_largest_second_moment():
    p = torch.zeros(2, dtype=torch.float64)
    state = adam_init(p, amsgrad=True)
    for g in ([1.0, 0.1], [0.0, 0.2], [0.0, 0.0]):
        p, state = adam_step(p, torch.tensor(g, dtype=torch.float64), state, amsgrad=True)
        assert torch.all(state["max_exp_avg_sq"] >= state["exp_avg_sq"])
    assert state["max_exp_avg_sq"][0] > state["exp_avg_sq"][0]


# --------------------------------------------------------------------------------------------
# meta device and bad input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,kwargs", [
    (Adam, {}), (Adam, dict(amsgrad=True, weight_decay=0.1, maximize=True)),
    (Adam, dict(foreach=True, amsgrad=True, eps_inside_sqrt=True)),
    (Adam, dict(foreach=True, weight_decay=0.1, decoupled_weight_decay=True)),
    (AdamW, {}), (AdamW, dict(foreach=True, amsgrad=True)),
], ids=lambda v: v.__name__ if isinstance(v, type) else kwargs_id(v))
def test_meta_device(cls, kwargs):
    run_on_meta(cls, kwargs)


def test_pure_steps_on_meta():
    p = torch.empty(4, 3, device="meta")
    for step_fn, init in ((adam_step, adam_init), (adamw_step, adamw_init)):
        new_p, state = step_fn(p, torch.empty_like(p), init(p, amsgrad=True), amsgrad=True)
        assert new_p.device.type == "meta" and state["step"] == 1
        assert all(state[k].device.type == "meta" for k in state if k != "step")


P = torch.zeros(3)
STATE = adam_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Adam([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: Adam([P], eps=-1e-8), ValueError, r"Invalid epsilon value: -1e-08"),
    (lambda: Adam([P], betas=(1.0, 0.999)), ValueError, r"Invalid beta parameter at index 0: 1.0"),
    (lambda: Adam([P], betas=(0.9, -0.1)), ValueError,
     r"Invalid beta parameter at index 1: -0.1"),
    (lambda: Adam([P], betas=0.9), ValueError, r"Invalid betas: 0.9"),
    (lambda: Adam([P], weight_decay=-1), ValueError, r"Invalid weight_decay value: -1"),
    (lambda: AdamW([P], lr="fast"), TypeError, r"Invalid learning rate: expected a number"),
    (lambda: AdamW([P], weight_decay=float("nan")), ValueError, r"Invalid weight_decay value"),
    (lambda: adam_step(P, P, STATE, lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    (lambda: adamw_step(P, P, STATE, betas=(0.9, 1.0)), ValueError,
     r"Invalid beta parameter at index 1: 1.0"),
    (lambda: adam_step(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64),
                       adam_init(torch.zeros(3)), lr=0.1), TypeError,
     r"expected a floating tensor for param, got torch.int64"),
    (lambda: adam_step(P, torch.zeros(4), STATE), ValueError,
     r"grad has shape \(4,\) but param has shape \(3,\)"),
    (lambda: adam_step(P, torch.zeros(3, device="meta"), STATE), ValueError,
     r"grad is on meta but param is on cpu"),
    (lambda: adam_step(P, torch.zeros(3, dtype=torch.float64), STATE), TypeError,
     r"grad has dtype torch.float64 but param has dtype torch.float32"),
    (lambda: adam_step(P, P, adam_init(torch.zeros(2))), ValueError,
     r"state\['exp_avg'\] has shape \(2,\) but param has shape \(3,\)"),
    (lambda: adam_step(P, P, STATE, amsgrad=True), ValueError,
     r"state has no 'max_exp_avg_sq'; create the state with adam_init\(param, amsgrad=True\)"),
    (lambda: adamw_step(P, P, {}), ValueError,
     r"state has no 'step'; create the state with adamw_init\(param\)"),
    (lambda: adam_step(P, P, STATE | {"step": torch.tensor(3.0)}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got tensor\(3.\)"),
    (lambda: adam_step(P, P, STATE | {"step": -1}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got -1"),
    (lambda: adam_step(P, P, None), TypeError, r"expected state to be a dict"),
    (lambda: adam_step([1.0], P, STATE), TypeError, r"expected param to be a torch.Tensor"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
