"""A one-element tensor learning rate, as torch accepts it (``lr=torch.tensor(0.01)``, for
compiled training loops and in-place schedules), for every optimizer class exported by
nnbolts.optim that has a torch.optim namesake: the same trajectory as torch's with the same
tensor, bit for bit on CPU after every step, the same refusals with torch's messages, and
schedulers that update the tensor in place."""

import functools
import math

import pytest
import torch
from optim_lockstep import clone_params, dense_grads, exact_on
from optim_oracle import assert_same_trajectory, make_params, objective

import nnbolts.optim

NAMESAKES = sorted(
    name for name in nnbolts.optim.__all__
    if isinstance(getattr(nnbolts.optim, name), type)
    and issubclass(getattr(nnbolts.optim, name), torch.optim.Optimizer)
    and isinstance(getattr(torch.optim, name, None), type)
)


# --------------------------------------------------------------------------------------------
# per-rule setups: parameters, gradients and the learning rate's value
# --------------------------------------------------------------------------------------------

def matrix_params(dtype, device):
    """2-d parameters (Muon's only kind), the last one without gradient."""
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=gen, dtype=dtype).to(device).requires_grad_()
            for s in ((6, 4), (3, 5), (2, 2))]


def matrix_grads(params, k):
    """A smooth deterministic gradient field with a step-dependent drift."""
    with torch.no_grad():
        for i, p in enumerate(params[:-1]):
            drift = torch.arange(p.numel(), dtype=p.dtype, device=p.device).reshape(p.shape)
            p.grad = p * (i + 1) - torch.sin(drift + 0.3 * k)
    params[-1].grad = None


def sparse_grads(params, k):
    """The oracle's gradient as a sparse COO tensor (SparseAdam's only kind)."""
    dense_grads(params, k)
    for p in params[:-1]:
        p.grad = p.grad.to_sparse()


SETUPS = {
    # name: (make params, gradient function, learning rate, extra kwargs)
    "LBFGS": (make_params, dense_grads, 0.5, {}),
    "Muon": (matrix_params, matrix_grads, 0.02, {}),
    "SparseAdam": (make_params, sparse_grads, 0.01, {}),
    "SGD": (make_params, dense_grads, 0.01, {"momentum": 0.9}),
}
DEFAULT_SETUP = (make_params, dense_grads, 0.01, {})


def lbfgs_closure(params, k):
    """LBFGS re-evaluates: the closure sets the gradient and returns the loss at ``params``."""
    def closure():
        dense_grads(params, k)
        with torch.no_grad():
            return objective(params, k)
    return closure


def lockstep_with_tensor_lr(name, lr_ours, lr_theirs, dtype, device, *, steps, kwargs=()):
    make, grads, _, extra = SETUPS.get(name, DEFAULT_SETUP)
    kwargs = {**extra, **dict(kwargs)}
    params = make(dtype, device)
    p_ours, p_theirs = clone_params(params), clone_params(params)
    ours = getattr(nnbolts.optim, name)(p_ours, lr=lr_ours, **kwargs)
    theirs = getattr(torch.optim, name)(p_theirs, lr=lr_theirs, **kwargs)
    for k in range(steps):
        if name == "LBFGS":
            ours.step(lbfgs_closure(p_ours, k))
            theirs.step(lbfgs_closure(p_theirs, k))
        else:
            grads(p_ours, k)
            for p, q in zip(p_ours, p_theirs):
                q.grad = None if p.grad is None else p.grad.clone()
            ours.step()
            theirs.step()
        if exact_on(device):
            for i, (a, b) in enumerate(zip(p_ours, p_theirs)):
                assert torch.equal(a, b), (
                    f"{name}: tensor {i} differs from torch after step {k + 1}: max |diff| "
                    f"{(a - b).abs().max().item():.3e}")
    assert_same_trajectory(p_ours, p_theirs, dtype, where=name)
    assert not torch.equal(p_ours[0], params[0]), f"{name} did not move"
    return ours, theirs


def test_the_namesakes_include_every_known_rule():
    """The parametrization below is not empty and misses none of the rules present today."""
    known = {"SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "NAdam", "Adamax", "RAdam",
             "ASGD", "Rprop"}
    assert known <= set(NAMESAKES)


# --------------------------------------------------------------------------------------------
# trajectories
# --------------------------------------------------------------------------------------------

LR_FORMS = {
    "0d-float32": lambda value: torch.tensor(value),
    "1elem-float64": lambda value: torch.tensor([value], dtype=torch.float64),
}


@pytest.mark.parametrize("form", LR_FORMS)
@pytest.mark.parametrize("name", NAMESAKES)
def test_tensor_lr_follows_torch(name, form, dtype, device):
    value = SETUPS.get(name, DEFAULT_SETUP)[2]
    lr_ours, lr_theirs = LR_FORMS[form](value), LR_FORMS[form](value)
    ours, _ = lockstep_with_tensor_lr(name, lr_ours, lr_theirs, dtype, device,
                                      steps=4 if name == "LBFGS" else 30)
    # the group keeps the very tensor it was given, as torch's does
    assert ours.param_groups[0]["lr"] is lr_ours
    assert torch.equal(lr_ours, LR_FORMS[form](value)), "the learning rate tensor was modified"


@pytest.mark.parametrize("name", ["SGD", "Adam", "NAdam", "Adamax", "RAdam", "ASGD"])
def test_in_place_scheduler_on_a_tensor_lr_follows_torch(name):
    """torch's schedulers ``fill_`` a tensor learning rate in place; the group still holds it."""
    make, grads, value, extra = SETUPS.get(name, DEFAULT_SETUP)
    runs = []
    for module in (nnbolts.optim, torch.optim):
        params = make(torch.float64, "cpu")
        lr = torch.tensor(value)
        opt = getattr(module, name)(params, lr=lr, **extra)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 40)
        for k in range(40):
            grads(params, k)
            opt.step()
            scheduler.step()
        assert opt.param_groups[0]["lr"] is lr and lr.item() != value
        runs.append(params)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_sgd_multi_tensor_path_takes_a_tensor_lr():
    """Torch's multi-tensor SGD takes a tensor lr; so does nnbolts'."""
    lockstep_with_tensor_lr("SGD", torch.tensor(0.01), torch.tensor(0.01), torch.float64, "cpu",
                            steps=30, kwargs={"foreach": True, "nesterov": True})


def test_adam_default_path_with_a_tensor_lr_is_the_one_tensor_path(device):
    """Where torch would pick its multi-tensor Adam (CUDA) it falls back to the one-tensor path
    for a tensor lr (its multi-tensor path refuses one without capturable); nnbolts too."""
    params = make_params(torch.float32, device)
    opt = nnbolts.optim.Adam(params, lr=torch.tensor(0.01))
    assert opt._use_foreach(opt.param_groups[0], params[:-1]) is False
    for name in ("Adam", "AdamW"):
        lockstep_with_tensor_lr(name, torch.tensor(0.01), torch.tensor(0.01), torch.float32,
                                device, steps=10)


# --------------------------------------------------------------------------------------------
# refusals: the same exception and message as torch
# --------------------------------------------------------------------------------------------

def refusal(make):
    try:
        make()
    except (TypeError, ValueError, RuntimeError) as exc:
        return type(exc), str(exc)
    return None


BAD_LRS = {
    "two-elements": (lambda: torch.tensor([0.1, 0.2]), {}),
    "negative": (lambda: torch.tensor(-0.1), {}),
    "foreach": (lambda: torch.tensor(0.1), {"foreach": True}),
}


@pytest.mark.parametrize("case", BAD_LRS)
@pytest.mark.parametrize("name", NAMESAKES)
def test_refusals_are_torchs(name, case):
    """Whatever torch refuses (a tensor of two elements, a negative value, a tensor lr on
    Adam's multi-tensor path) nnbolts refuses with the same exception, naming the same value
    (in torch's words, or in nnbolts' ``Invalid learning rate: <value>`` where torch's rule has
    other wording, e.g. Adafactor's), and whatever torch accepts nnbolts accepts."""
    make_lr, kwargs = BAD_LRS[case]
    make, *_ = SETUPS.get(name, DEFAULT_SETUP)
    theirs_cls, ours_cls = getattr(torch.optim, name), getattr(nnbolts.optim, name)
    if "foreach" in kwargs and "foreach" not in ours_cls.__init__.__code__.co_varnames:
        pytest.skip(f"{name} has no foreach option")
    theirs = refusal(functools.partial(theirs_cls, make(torch.float32, "cpu"), lr=make_lr(),
                                       **kwargs))
    ours = refusal(functools.partial(ours_cls, make(torch.float32, "cpu"), lr=make_lr(),
                                     **kwargs))
    if theirs is None:
        assert ours is None
        return
    assert ours is not None and ours[0] == theirs[0], (ours, theirs)
    value = theirs[1].rsplit(": ", 1)[-1]
    assert ours[1] in (theirs[1], f"Invalid learning rate: {value}"), (ours, theirs)


@pytest.mark.parametrize("name", NAMESAKES)
def test_a_nan_tensor_lr_is_refused(name):
    """A NaN learning rate is refused, tensor or not (torch's SGD lets one through: its check
    is ``lr < 0``; nnbolts never starts a run that can only produce NaN)."""
    make, *_ = SETUPS.get(name, DEFAULT_SETUP)
    with pytest.raises(ValueError, match=r"Invalid learning rate: nan"):
        getattr(nnbolts.optim, name)(make(torch.float32, "cpu"), lr=torch.tensor(math.nan))


def test_a_tensor_lr_set_after_construction_is_refused_on_adams_multi_tensor_path():
    """Torch's multi-tensor Adam refuses a tensor lr at the step, not only in the constructor."""
    params = make_params(torch.float32, "cpu")
    for module in (nnbolts.optim, torch.optim):
        opt = module.Adam(params, lr=0.01, foreach=True)
        opt.param_groups[0]["lr"] = torch.tensor(0.01)
        dense_grads(params, 0)
        with pytest.raises(RuntimeError, match=r"lr as a Tensor is not supported for "
                                               r"capturable=False and foreach=True"):
            opt.step()


def test_pure_steps_take_a_tensor_lr():
    """The one-tensor rules take a tensor lr too, and agree with their classes."""
    gen = torch.Generator().manual_seed(1)
    p, g = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    pairs = [(n[:-len("_step")], getattr(nnbolts.optim, n)) for n in nnbolts.optim.__all__
             if n.endswith("_step") and n[:-len("_step")] + "_init" in nnbolts.optim.__all__]
    checked = 0
    for rule, step in pairs:
        init = getattr(nnbolts.optim, rule + "_init")
        try:
            state = init(p)
        except TypeError:
            continue  # an init that needs more than the parameter (tested in its own file)
        if "lr" not in step.__code__.co_varnames[:step.__code__.co_argcount
                                                 + step.__code__.co_kwonlyargcount]:
            continue
        try:
            float_p, _ = step(p, g, init(p), lr=0.01)
        except (TypeError, ValueError, RuntimeError):
            continue  # a rule that needs other inputs (sparse gradients, matrices, ...)
        tensor_p, _ = step(p, g, state, lr=torch.tensor(0.01))
        # a float32 tensor holds 0.01 rounded to float32: close to the float run, not equal
        torch.testing.assert_close(tensor_p, float_p, rtol=1e-5, atol=1e-7)
        # a one-element tensor of any shape computes as a 0-d one, as in torch
        one_p, _ = step(p, g, init(p), lr=torch.tensor([[0.01]], dtype=torch.float64))
        assert one_p.shape == p.shape
        torch.testing.assert_close(one_p, float_p, rtol=1e-6, atol=1e-8)
        checked += 1
    assert checked >= 8
