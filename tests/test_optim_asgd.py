"""ASGD against torch.optim.ASGD: bit-identical after every step on CPU, parameters and the whole
state (``eta`` and ``mu`` as torch stores them: 0-d tensors of torch's scalar dtype on the
parameter's device), close to torch's multi-tensor path, state dicts both ways, the average and
the step-size schedule by hand, the pure step, meta, bad input. The trajectories run in lockstep
(one gradient per step for both sides)."""

import functools

import pytest
import torch
from optim_lockstep import (
    assert_same_under_scheduler,
    clone_params,
    dense_grads,
    exact_on,
    lockstep,
    state_dict_handover,
)
from optim_oracle import (
    check_pure_step,
    kwargs_id,
    make_params,
    max_rel_err,
    option_grid,
    run,
    run_on_meta,
)

from nnbolts.optim.asgd import ASGD, asgd_init, asgd_step

# t0 = 20 switches the averaging on within the 300 steps; torch's default 1e6 never does
GRID = option_grid(lr=[0.01], t0=[1e6, 20], weight_decay=[0, 0.05], maximize=[False, True])
STATE_KEYS = ("step", "eta", "mu", "ax")


def compare(kwargs, dtype, device, *, steps=300, foreach=False):
    """``steps`` steps in lockstep with torch's one-tensor (or multi-tensor) path: on CPU every
    parameter and state tensor (``eta``, ``mu``, ``ax``) equal after every step."""
    grads = functools.partial(dense_grads, negate=kwargs.get("maximize", False))
    ours, theirs, p_ours, p_theirs = lockstep(
        lambda ps: ASGD(ps, foreach=foreach, **kwargs),
        lambda ps: torch.optim.ASGD(ps, foreach=foreach, **kwargs),
        make_params(dtype, device), grads, steps=steps, exact=exact_on(device),
        state_keys=STATE_KEYS, where=f"ASGD({kwargs_id(kwargs)}, foreach={foreach})")
    for po, pt in zip(p_ours[:-1], p_theirs[:-1]):
        for key in ("eta", "mu"):
            a, b = ours.state[po][key], theirs.state[pt][key]
            assert (a.shape, a.dtype, a.device) == (b.shape, b.dtype, b.device), key
            if exact_on(device):
                assert a.item() == b.item(), key


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_asgd_matches_torch_over_300_steps(kwargs, dtype, device):
    compare(kwargs, dtype, device)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.05, lambd=0.01, alpha=0.5, t0=0, weight_decay=0.01),
    dict(lr=0.02, lambd=0.0, alpha=1.0, t0=150.5),
], ids=kwargs_id)
def test_asgd_matches_torch_at_other_values(kwargs):
    compare(kwargs, torch.float64, "cpu")


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.01, t0=20, lambd=0.01, weight_decay=0.05, maximize=True),
    dict(lr=0.01, t0=20, lambd=0.01, weight_decay=0.05),
], ids=kwargs_id)
def test_multi_tensor_path_matches_torchs(kwargs, dtype, device):
    compare(kwargs, dtype, device, foreach=True)


def test_the_two_paths_agree_to_float32_rounding(dtype):
    """Torch's two ASGD paths are rounded differently (the multi-tensor one applies the float32
    ``eta`` tensor directly and forms η_{t+1} from a float32 step count; the one-tensor one works
    in Python floats), so even float64 parameters agree only to float32-like rounding: a few
    1e-8 after 300 steps here; float32 parameters to a few 1e-6. nnbolts' two paths are torch's
    two paths, so the same holds between them."""
    kwargs = dict(lr=0.01, t0=20, lambd=0.01, weight_decay=0.05, maximize=True)
    rtol = 1e-7 if dtype == torch.float64 else 3e-5
    params = make_params(dtype, "cpu")
    p_one, p_many = clone_params(params), clone_params(params)
    one, many = ASGD(p_one, foreach=False, **kwargs), ASGD(p_many, foreach=True, **kwargs)
    for k in range(300):
        dense_grads(p_one, k, negate=True)
        for p, q in zip(p_one, p_many):
            q.grad = None if p.grad is None else p.grad.clone()
        one.step()
        many.step()
    for po, pm in zip(p_one[:-1], p_many[:-1]):
        assert max_rel_err(pm, po) < rtol
        assert max_rel_err(many.state[pm]["ax"], one.state[po]["ax"]) < rtol
        assert many.state[pm]["eta"].item() == pytest.approx(one.state[po]["eta"].item(),
                                                             rel=1e-6)


def test_multi_tensor_path_with_mixed_dtypes_in_one_group():
    """float32 and float64 parameters in one group: one multi-tensor call per dtype, as torch."""
    def params():
        ps = make_params(torch.float64, "cpu")
        return [ps[0], ps[1].float(), ps[2], ps[3].float()]
    lockstep(lambda ps: ASGD(ps, foreach=True, t0=5), lambda ps: torch.optim.ASGD(
        ps, foreach=True, t0=5), params(), mixed_grads, steps=50, state_keys=STATE_KEYS)


def mixed_grads(params, k):
    """A simple gradient for parameters of mixed dtypes (the last one gets none)."""
    for i, p in enumerate(params[:-1]):
        with torch.no_grad():
            p.grad = (p - 0.1 * (i + 1)) * (k % 7 + 1) / 7
    params[-1].grad = None


def test_defaults_are_torchs():
    ours = ASGD(make_params(torch.float64, "cpu")).defaults
    theirs = torch.optim.ASGD(make_params(torch.float64, "cpu")).defaults
    assert ours == theirs


def test_state_dict_round_trip(dtype, device):
    kwargs = dict(lr=0.01, t0=50, lambd=0.01, weight_decay=0.05, maximize=True)
    state_dict_handover(ASGD, torch.optim.ASGD, kwargs, make_params(dtype, device),
                        functools.partial(dense_grads, negate=True), exact=exact_on(device))


def test_state_has_torchs_keys_and_types_and_crosses_both_ways():
    params = make_params(torch.float64, "cpu")
    ours = run(lambda ps: ASGD(ps, lr=0.01, t0=3), params, 7)
    twin = make_params(torch.float64, "cpu")
    reference = run(lambda ps: torch.optim.ASGD(ps, lr=0.01, t0=3), twin, 7)
    state, theirs_state = ours.state[params[0]], reference.state[twin[0]]
    assert list(state) == list(theirs_state) == ["step", "eta", "mu", "ax"]
    assert state["step"] == 7 and isinstance(state["step"], int)
    for key in ("eta", "mu"):  # 0-d float32 tensors on the parameter's device, as torch's
        assert state[key].shape == () and state[key].dtype == theirs_state[key].dtype
        assert state[key].dtype == torch.float32 and state[key].device == params[0].device
    assert ours.state_dict()["param_groups"] == reference.state_dict()["param_groups"]

    theirs = torch.optim.ASGD(params, lr=0.01, t0=3)
    theirs.load_state_dict(ours.state_dict())
    assert torch.is_tensor(theirs.state[params[0]]["step"])
    back = ASGD(params, lr=0.01, t0=3)
    back.load_state_dict(theirs.state_dict())
    again = back.state[params[0]]
    assert again["step"] == 7 and isinstance(again["step"], int)
    # torch's loader casts eta and mu to the parameter's dtype; so does nnbolts' (it is torch's)
    assert again["eta"].dtype == theirs.state[params[0]]["eta"].dtype == torch.float64
    assert again["eta"].item() == state["eta"].item()


def test_scalar_dtype_follows_torchs_default_dtype():
    """Under a float64 default dtype torch keeps ``eta`` and ``mu`` in float64; so does ours."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        compare(dict(lr=0.01, t0=5), torch.float32, "cpu", steps=20)
        state = asgd_init(torch.zeros(3, dtype=torch.float32))
        assert state["eta"].dtype == state["mu"].dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_works_under_lr_scheduler_and_param_groups():
    """The scheduler's lr enters the next η_t (computed at the end of each step), as in torch."""
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02, "t0": 10},
                         {"params": ps[2:], "lambd": 0.01, "alpha": 0.6, "weight_decay": 0.1}]
    assert_same_under_scheduler(ASGD, torch.optim.ASGD, groups,
                                lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, 0.98))


def test_average_and_schedule_by_hand():
    """With t0 = 0, ``ax`` is θ at steps 1 and 2, then the mean of the iterates from step 2 on;
    η_{t+1} = η/(1 + λ'ηt)^alpha and the weight 1/max(1, t − t0), rounded to float32 as torch
    stores them."""
    lr, lambd, power = 0.1, 0.5, 0.75
    p = torch.tensor([1.0, -2.0], dtype=torch.float64)
    state = asgd_init(p, lr=lr)
    iterates = []
    gen = torch.Generator().manual_seed(0)
    for t in range(1, 9):
        eta_t = state["eta"].item()
        g = torch.randn(2, generator=gen, dtype=torch.float64)
        expected = (1 - lambd * eta_t) * p - eta_t * g
        p, state = asgd_step(p, g, state, lr=lr, lambd=lambd, alpha=power, t0=0)
        torch.testing.assert_close(p, expected, rtol=1e-15, atol=0)
        iterates.append(p)
        # the weights 1/(t−1) are float32-rounded as torch stores them: the mean to ~1e-8
        mean = torch.stack(iterates[1:] if t >= 2 else iterates).mean(0)
        torch.testing.assert_close(state["ax"], mean, rtol=1e-7, atol=0)
        as_float32 = lambda x: torch.tensor(x, dtype=torch.float32).item()
        assert state["eta"].item() == as_float32(lr / (1 + lambd * lr * t) ** power)
        assert state["mu"].item() == as_float32(1 / max(1, t - 0))


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    kwargs = dict(lr=0.05, lambd=0.01, alpha=0.6, t0=5, weight_decay=0.01, maximize=True)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = asgd_init(p, lr=0.05)
    opt_p = p.clone().requires_grad_()
    opt = ASGD([opt_p], **kwargs)
    check_pure_step(asgd_step, p, state, opt, kwargs, gen)


@pytest.mark.parametrize("kwargs", [{}, dict(t0=0, weight_decay=0.1, maximize=True,
                                             foreach=True)], ids=kwargs_id)
def test_meta_device(kwargs):
    run_on_meta(ASGD, kwargs, steps=3)


def test_state_on_meta_stays_on_meta():
    params = [torch.empty(4, 3, device="meta", requires_grad=True)]
    opt = ASGD(params, t0=0)
    for _ in range(3):
        params[0].grad = torch.empty_like(params[0])
        opt.step()
    state = opt.state[params[0]]
    assert all(state[k].device.type == "meta" for k in ("eta", "mu", "ax"))
    assert state["eta"].dtype == torch.float32 and state["step"] == 3


def test_pure_step_on_meta():
    p = torch.empty(4, 3, device="meta")
    new_p, state = asgd_step(p, torch.empty_like(p), asgd_init(p), t0=0, weight_decay=0.1)
    assert new_p.device.type == "meta" and state["step"] == 1
    assert all(state[k].device.type == "meta" for k in ("eta", "mu", "ax"))


P = torch.zeros(3)
STATE = asgd_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ASGD([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: ASGD([P], lr=torch.tensor([0.1, 0.2])), ValueError,
     r"Tensor lr must be 1-element"),
    (lambda: ASGD([P], weight_decay=-0.1), ValueError, r"Invalid weight_decay value: -0.1"),
    (lambda: ASGD([P], lambd=-1e-4), ValueError, r"Invalid lambd value: -0.0001"),
    (lambda: ASGD([P], alpha=-0.75), ValueError, r"Invalid alpha value: -0.75"),
    (lambda: ASGD([P], t0=float("nan")), ValueError, r"Invalid t0 value: nan"),
    (lambda: ASGD([P], t0="soon"), TypeError, r"Invalid t0 value: expected a number, got str"),
    (lambda: ASGD([P], capturable=True), ValueError,
     r"capturable=True is not supported by nnbolts: the step count is a Python int"),
    (lambda: ASGD([P], differentiable=True), ValueError,
     r"differentiable=True is not supported by nnbolts"),
    (lambda: asgd_init(P, lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    (lambda: asgd_step(P, P, STATE, lambd=-1.0), ValueError, r"Invalid lambd value: -1.0"),
    (lambda: asgd_step(P, torch.zeros(2), STATE), ValueError,
     r"grad has shape \(2,\) but param has shape \(3,\)"),
    (lambda: asgd_step(P, P, {"step": 0, "eta": STATE["eta"], "ax": P}), ValueError,
     r"state has no 'mu'; create the state with asgd_init\(param, lr=lr\)"),
    (lambda: asgd_step(P, P, STATE | {"eta": 0.01}), TypeError,
     r"expected state\['eta'\] to be a torch.Tensor, got float"),
    (lambda: asgd_step(P, P, STATE | {"mu": torch.ones(1)}), ValueError,
     r"expected state\['mu'\] to be a 0-d tensor, got shape \(1,\)"),
    (lambda: asgd_step(P, P, STATE | {"eta": torch.ones((), device="meta")}), ValueError,
     r"state\['eta'\] is on meta but param is on cpu"),
    (lambda: asgd_step(P, P, STATE | {"ax": torch.zeros(4)}), ValueError,
     r"state\['ax'\] has shape \(4,\) but param has shape \(3,\)"),
    (lambda: asgd_step(P, P, STATE | {"step": 0.0}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got 0.0"),
    (lambda: asgd_step(P, P, "state"), TypeError, r"expected state to be a dict"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
