"""Schedule-free AdamW against its authors' package: ``schedulefree.AdamWScheduleFree`` (the
memory-efficient form nnbolts follows, bit for bit) and ``AdamWScheduleFreeReference`` (the same
method with x, y and z all stored, to rounding), schedulefree 1.4.1."""

import contextlib
import io

import pytest
import schedulefree
import torch
from optim_oracle import (
    assert_same_trajectory,
    kwargs_id,
    make_params,
    objective,
    run,
    state_dict_round_trip,
)

from nnbolts.optim import (
    ScheduleFreeAdamW,
    schedule_free_adamw_init,
    schedule_free_adamw_step,
    schedule_free_adamw_x,
)

COUNTERS = ("k", "weight_sum", "lr_max", "scheduled_lr", "train_mode")
KEYS = ("z", "exp_avg_sq")


def _training(cls):
    """A constructor that also switches to training mode (both start in eval mode)."""
    def make(params, **kwargs):
        opt = cls(params, **kwargs)
        opt.train()
        return opt
    make.__name__ = cls.__name__
    return make


Ours, Theirs = _training(ScheduleFreeAdamW), _training(schedulefree.AdamWScheduleFree)

# The defaults, and every option changed at once.
GRID = [
    dict(lr=0.01),
    dict(lr=0.05, betas=(0.95, 0.99), eps=1e-3, weight_decay=0.05, warmup_steps=50, r=0.5,
         weight_lr_power=1.0),
]


def assert_same_counters(ours, theirs):
    for go, gt in zip(ours.param_groups, theirs.param_groups):
        assert {k: go[k] for k in COUNTERS} == {k: gt[k] for k in COUNTERS}


@pytest.mark.parametrize("kwargs", GRID, ids=kwargs_id)
def test_matches_the_reference_over_300_steps_in_both_modes(kwargs, dtype, device):
    """Ours against the reference's one-tensor and multi-tensor paths: the training point y
    after 300 steps, the state, the group counters, then the averaged x after eval()."""
    p_ours = make_params(dtype, device)
    ours = run(lambda ps: Ours(ps, **kwargs), p_ours, 300)
    for foreach in (False, True):
        p_theirs = make_params(dtype, device)
        theirs = run(lambda ps, f=foreach: Theirs(ps, foreach=f, **kwargs), p_theirs, 300)
        if foreach:  # compare x too: switch both (the second comparison is ours' last use)
            ours.eval()
            theirs.eval()
        cpu = torch.device(device).type == "cpu"
        for a, b in zip(p_ours, p_theirs):
            if cpu:  # the reference's operations in its order: equal
                assert torch.equal(a, b)
        assert_same_trajectory(p_ours, p_theirs, dtype, where=f"foreach={foreach}")
        for po, pt in zip(p_ours, p_theirs):
            assert set(ours.state.get(po, {})) == set(theirs.state.get(pt, {}))
            for key in ours.state.get(po, {}):
                a, b = ours.state[po][key], theirs.state[pt][key]
                if cpu:
                    assert torch.equal(a, b)
                assert_same_trajectory([a], [b], dtype, where=f"state[{key!r}]")
        assert_same_counters(ours, theirs)
    assert ours.state.get(p_ours[-1], {}) == {}, "a parameter without gradient got state"


def test_defaults_are_the_references():
    p = [torch.zeros(2, requires_grad=True)]
    ours, theirs = ScheduleFreeAdamW(p), schedulefree.AdamWScheduleFree(p)
    mine, reference = ours.param_groups[0], theirs.param_groups[0]
    assert set(mine) == set(reference)
    assert {k: v for k, v in mine.items() if k not in ("params", "foreach")} == \
        {k: v for k, v in reference.items() if k not in ("params", "foreach")}
    assert mine["foreach"] is None and reference["foreach"] is True  # torch's rule vs always


def test_x_y_z_bookkeeping_against_the_simplified_reference():
    """AdamWScheduleFreeReference stores x, y and z; ours keeps y in the parameter and recovers
    x from y and z. Different rounding, the same sequences."""
    kwargs = dict(lr=0.02, weight_decay=0.1, warmup_steps=10, r=1.0, weight_lr_power=1.0)
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    with contextlib.redirect_stdout(io.StringIO()):  # the reference prints its mode switches
        ours, ref = Ours(a, **kwargs), _training(schedulefree.AdamWScheduleFreeReference)(
            b, **kwargs)
        run(ours, a, 200)
        run(ref, b, 200)
        assert_same_trajectory(a, b, torch.float64, rtol64=1e-12, where="y")
        for pa, pb in zip(a[:-1], b[:-1]):
            assert_same_trajectory([ours.state[pa]["z"]], [ref.state[pb]["z"]], torch.float64,
                                   rtol64=1e-12, where="z")
            x = schedule_free_adamw_x(pa.detach(), ours.state[pa], betas=kwargs.get(
                "betas", (0.9, 0.999)))
            assert_same_trajectory([x], [ref.state[pb]["x"]], torch.float64, rtol64=1e-12,
                                   where="x")
        ours.eval()
        ref.eval()
        assert_same_trajectory(a, b, torch.float64, rtol64=1e-12, where="eval x")


def test_tensor_lr_matches_the_reference():
    kwargs = dict(lr=torch.tensor(0.01), weight_decay=0.1, warmup_steps=5)
    a, b = make_params(torch.float32, "cpu"), make_params(torch.float32, "cpu")
    ours, theirs = run(lambda ps: Ours(ps, **kwargs), a, 30), run(
        lambda ps: Theirs(ps, **kwargs), b, 30)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert torch.is_tensor(ours.param_groups[0]["lr_max"])  # tensors, as in the reference
    assert_same_counters(ours, theirs)


def test_zero_lr_moves_nothing_as_in_the_reference():
    """lr = 0: every averaging weight is 0 and c_t is taken as 0 (the reference catches the
    ZeroDivisionError); y, z and x stay where they were."""
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    start = [p.detach().clone() for p in a]
    ours = run(lambda ps: Ours(ps, lr=0.0), a, 5)
    run(lambda ps: Theirs(ps, lr=0.0), b, 5)
    ours.eval()
    for x, y, s in zip(a, b, start):
        assert torch.equal(x, y) and torch.equal(x, s)


@pytest.mark.parametrize("kwargs", [dict(lr=0.01, weight_decay=0.1, warmup_steps=10)],
                         ids=kwargs_id)
def test_state_dict_round_trip_in_training_mode(kwargs, dtype, device):
    state_dict_round_trip(Ours, Theirs, kwargs, dtype=dtype, device=device, steps=100)


def test_state_dict_saved_in_eval_mode_crosses_both_ways():
    """Saved in eval mode (the parameters hold x), loaded by the other class, switched back to
    training: the same as the reference doing the same switches without a save."""
    kwargs = dict(lr=0.02, r=1.0)
    reference = make_params(torch.float64, "cpu")
    opt = run(lambda ps: Theirs(ps, **kwargs), reference, 60)
    opt.eval()
    opt.train()
    run(opt, reference, 60, start=60)
    for first, second in ((Theirs, ScheduleFreeAdamW), (Ours, schedulefree.AdamWScheduleFree)):
        params = make_params(torch.float64, "cpu")
        opt = run(lambda ps, c=first: c(ps, **kwargs), params, 60)
        opt.eval()
        saved = opt.state_dict()
        assert all(not g["train_mode"] for g in saved["param_groups"])
        fresh = second(params, **kwargs)
        fresh.load_state_dict(saved)
        fresh.train()
        run(fresh, params, 60, start=60)
        for x, y in zip(params, reference):
            assert torch.equal(x, y), f"{first.__name__} -> {second.__name__}"


def test_modes_switch_between_y_and_x_and_guard_the_step():
    params = make_params(torch.float64, "cpu")
    opt = ScheduleFreeAdamW(params, lr=0.05)
    before = [p.detach().clone() for p in params]
    opt.eval()  # already in eval mode: nothing moves
    opt.train()  # no state yet: nothing moves either
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    run(opt, params, 10)
    y = [p.detach().clone() for p in params]
    opt.train()  # already training: nothing moves
    assert all(torch.equal(p, b) for p, b in zip(params, y))
    opt.eval()
    for p, yp in zip(params[:-1], y[:-1]):
        assert torch.equal(p, schedule_free_adamw_x(yp, opt.state[p]))
        assert not torch.allclose(p, yp)
    assert torch.equal(params[-1], y[-1])  # never stepped: no z, left alone
    with pytest.raises(RuntimeError, match=r"step\(\) was called in eval mode"):
        opt.step()
    opt.train()  # back to y, up to the rounding of the round trip
    assert_same_trajectory(params, y, torch.float64, rtol64=1e-14, where="y after eval/train")


def test_a_group_left_in_eval_mode_is_refused():
    params = make_params(torch.float64, "cpu")
    opt = ScheduleFreeAdamW([{"params": params[:2]}, {"params": params[2:]}])
    opt.train()
    opt.param_groups[1]["train_mode"] = False
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step()


def test_gradients_are_left_untouched():
    """The reference overwrites p.grad with the normalised gradient; ours does not."""
    p = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = Ours([p], lr=0.1, weight_decay=0.1)
    p.grad = torch.full_like(p, 0.5)
    opt.step()
    assert torch.equal(p.grad, torch.full_like(p, 0.5))


def test_closure_and_param_groups_with_a_scheduler():
    a, b = make_params(torch.float64, "cpu"), make_params(torch.float64, "cpu")
    groups = lambda ps: [{"params": ps[:2], "lr": 0.02},
                         {"params": ps[2:], "warmup_steps": 10, "weight_decay": 0.1}]
    oa, ob = Ours(groups(a), lr=0.01), Theirs(groups(b), lr=0.01)
    sa = torch.optim.lr_scheduler.StepLR(oa, 20, gamma=0.5)
    sb = torch.optim.lr_scheduler.StepLR(ob, 20, gamma=0.5)
    for k in range(60):
        for opt, ps, sched in ((oa, a, sa), (ob, b, sb)):
            def closure(ps=ps, opt=opt, k=k):
                opt.zero_grad()
                loss = objective(ps, k)
                loss.backward()
                return loss
            loss = opt.step(closure)
            sched.step()
        assert torch.is_tensor(loss)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert_same_counters(oa, ob)


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    kwargs = dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.01, warmup_steps=4, r=1.0)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
    state = schedule_free_adamw_init(p)
    opt_p = p.clone().requires_grad_()
    opt = Ours([opt_p], foreach=False, **kwargs)  # the one-tensor kernel, on every device
    for _ in range(12):
        g = torch.randn(5, 3, generator=gen, dtype=dtype).to(device)
        p_before, g_before = p.clone(), g.clone()
        state_before = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
        new_p, new_state = schedule_free_adamw_step(p, g, state, **kwargs)
        assert torch.equal(p, p_before) and torch.equal(g, g_before), "inputs were mutated"
        for key, value in state_before.items():
            assert (torch.equal(state[key], value) if torch.is_tensor(value)
                    else state[key] == value), f"state[{key!r}] was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        group = opt.param_groups[0]
        assert (new_state["step"], new_state["weight_sum"], new_state["lr_max"]) == (
            group["k"], group["weight_sum"], group["lr_max"])
        for key in KEYS:
            assert torch.equal(new_state[key], opt.state[opt_p][key])
        p, state = new_p, new_state
    x = schedule_free_adamw_x(p, state, betas=kwargs["betas"])
    opt.eval()
    assert torch.equal(x, opt_p.detach())


def test_x_is_the_average_of_the_z_iterates():
    """With r = 0 and no warmup every weight is η², so c_t = 1/t and x_t is the plain mean of
    z_1 … z_t; with r = 1 the weights grow like t: x_t = Σ i z_i / Σ i."""
    gen = torch.Generator().manual_seed(0)
    for r, weight in ((0.0, lambda i: 1.0), (1.0, lambda i: float(i))):
        p = torch.randn(6, generator=gen, dtype=torch.float64)
        state, zs = schedule_free_adamw_init(p), []
        for _ in range(25):
            g = torch.randn(6, generator=gen, dtype=torch.float64)
            p, state = schedule_free_adamw_step(p, g, state, lr=0.1, r=r)
            zs.append(state["z"])
        mean = sum(weight(i) * z for i, z in enumerate(zs, 1)) / sum(map(weight, range(1, 26)))
        torch.testing.assert_close(schedule_free_adamw_x(p, state), mean, rtol=1e-12, atol=1e-12)


def test_first_step_and_warmup_by_hand():
    """Step 1: v̂ = g², so ĝ = g/(|g| + ϵ) + λy; c_1 = 1, so x_1 = z_1 = y_0 − η_1 ĝ and
    y_1 = z_1 too. The warmup scales the rate by t/T_w."""
    p, g = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([0.5, 4.0],
                                                                          dtype=torch.float64)
    new_p, state = schedule_free_adamw_step(p, g, schedule_free_adamw_init(p), lr=0.1, eps=0.0,
                                            weight_decay=0.5, warmup_steps=4)
    eta1, g_hat = 0.1 * 1 / 4, torch.sign(g) + 0.5 * p
    assert torch.allclose(state["z"], p - eta1 * g_hat, rtol=1e-15)
    assert torch.allclose(new_p, state["z"], rtol=1e-15)
    assert state["lr_max"] == eta1 and state["weight_sum"] == eta1 ** 2 and state["step"] == 1


def test_meta_device():
    params = [torch.empty(s, device="meta", requires_grad=True) for s in [(6, 4), (4,)]]
    opt = ScheduleFreeAdamW(params, weight_decay=0.1, foreach=True)
    opt.train()
    for _ in range(2):
        for p in params:
            p.grad = torch.empty_like(p)
        opt.step()
    opt.eval()
    for p in params:
        assert p.device.type == "meta"
        assert all(v.device.type == "meta" for v in opt.state[p].values())
    new_p, state = schedule_free_adamw_step(params[1], params[1].grad,
                                            schedule_free_adamw_init(params[1]))
    assert new_p.device.type == "meta" and state["z"].device.type == "meta"


P = torch.zeros(3)
STATE = schedule_free_adamw_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ScheduleFreeAdamW([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: ScheduleFreeAdamW([P], eps=-1.0), ValueError, r"Invalid epsilon value: -1.0"),
    (lambda: ScheduleFreeAdamW([P], betas=(0.0, 0.9)), ValueError,
     r"Invalid beta parameter at index 0: 0.0 \(schedule-free needs beta_1 > 0"),
    (lambda: ScheduleFreeAdamW([P], betas=(0.9, 1.0)), ValueError,
     r"Invalid beta parameter at index 1: 1.0"),
    (lambda: ScheduleFreeAdamW([P], weight_decay=-0.1), ValueError,
     r"Invalid weight_decay value: -0.1"),
    (lambda: ScheduleFreeAdamW([P], warmup_steps=-1), ValueError, r"Invalid warmup_steps: -1"),
    (lambda: ScheduleFreeAdamW([P], warmup_steps=2.5), TypeError,
     r"expected warmup_steps to be an int"),
    (lambda: ScheduleFreeAdamW([P], r=-1.0), ValueError, r"Invalid r value: -1.0"),
    (lambda: ScheduleFreeAdamW([P], weight_lr_power=float("nan")), ValueError,
     r"Invalid weight_lr_power value: nan"),
    (lambda: ScheduleFreeAdamW([P]).step(), RuntimeError, r"call optimizer.train\(\)"),
    (lambda: schedule_free_adamw_step(P, P, STATE, lr=-1.0), ValueError,
     r"Invalid learning rate: -1.0"),
    (lambda: schedule_free_adamw_step(P, torch.zeros(2), STATE), ValueError,
     r"grad has shape \(2,\) but param has shape \(3,\)"),
    (lambda: schedule_free_adamw_step(P, P, {"step": 0, "z": P}), ValueError,
     r"state has no 'weight_sum'; create the state with schedule_free_adamw_init\(param\)"),
    (lambda: schedule_free_adamw_step(P, P, STATE | {"lr_max": "x"}), TypeError,
     r"expected state\['lr_max'\] to be a number"),
    (lambda: schedule_free_adamw_step(P, P, STATE | {"step": 1.0}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got 1.0"),
    (lambda: schedule_free_adamw_step(P, P, schedule_free_adamw_init(torch.zeros(4))),
     ValueError, r"state\['z'\] has shape \(4,\) but param has shape \(3,\)"),
    (lambda: schedule_free_adamw_x(P, {}), ValueError, r"state has no 'z'"),
    (lambda: schedule_free_adamw_x(P, STATE, betas=(0.0, 0.9)), ValueError, r"index 0"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
