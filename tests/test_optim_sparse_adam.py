"""SparseAdam against torch.optim.SparseAdam, fed the sparse gradients of embedding lookups
(``nn.Embedding(sparse=True)``): only the rows a step looks up move, exactly as torch's do."""

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from optim_lockstep import exact_on, lockstep, state_dict_handover
from optim_oracle import kwargs_id, option_grid

from nnbolts.optim.sparse_adam import SparseAdam, sparse_adam_init, sparse_adam_step

# sparse tensors built here are valid by construction; torch's reminder that it does not check
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled")

TABLES = [(10, 3), (7, 4)]   # two embedding tables (rows × width), plus a frozen one
STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")


def make_tables(dtype, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype).to(device).requires_grad_()
              for s in TABLES]
    frozen = torch.randn(5, 2, generator=gen, dtype=dtype).to(device).requires_grad_()
    return params + [frozen]


def sparse_grads(params, k, *, negate=False):
    """Step ``k`` looks up six random rows of each live table (repeats included, so the
    gradient arrives uncoalesced) through ``F.embedding(..., sparse=True)``."""
    gen = torch.Generator().manual_seed(2000 + k)
    for p in params:
        p.grad = None
    loss = 0.0
    for i, p in enumerate(params[:-1]):
        rows = torch.randint(0, p.shape[0], (6,), generator=gen).to(p.device)
        e = F.embedding(rows, p, sparse=True)
        loss = loss + (i + 1) * ((e - 0.5) ** 2).sum() + 0.05 * (e ** 4).sum()
    (-loss if negate else loss).backward()


def make(kwargs):
    return (functools.partial(SparseAdam, **kwargs),
            functools.partial(torch.optim.SparseAdam, **kwargs))


GRID = option_grid(maximize=[False, True], hyper=["default", "fast"])
HYPER = {"default": dict(lr=0.01), "fast": dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3)}


def grid_kwargs(point):
    return {**HYPER[point["hyper"]], "maximize": point["maximize"]}


@pytest.mark.parametrize("point", GRID, ids=kwargs_id)
def test_sparse_adam_matches_torch_step_by_step_over_300_steps(point, dtype, device):
    kwargs = grid_kwargs(point)
    ours, theirs = make(kwargs)
    grads = functools.partial(sparse_grads, negate=kwargs["maximize"])
    lockstep(ours, theirs, make_tables(dtype, device), grads, exact=exact_on(device),
             state_keys=STATE_KEYS, where=f"SparseAdam({kwargs_id(kwargs)})")


@pytest.mark.parametrize("kwargs", [dict(lr=0.01), dict(lr=0.05, betas=(0.0, 0.5),
                                                        maximize=True)], ids=kwargs_id)
def test_state_dict_both_ways(kwargs, dtype, device):
    grads = functools.partial(sparse_grads, negate=kwargs.get("maximize", False))
    state_dict_handover(SparseAdam, torch.optim.SparseAdam, kwargs, make_tables(dtype, device),
                        grads, exact=exact_on(device))


def test_with_an_embedding_module_like_torch():
    """The intended use: ``nn.Embedding(sparse=True)`` trained by SparseAdam, the rest (here a
    linear head) by another optimizer."""
    emb_a, head_a = torch.nn.Embedding(20, 4, sparse=True), torch.nn.Linear(4, 1)
    emb_b, head_b = copy.deepcopy(emb_a), copy.deepcopy(head_a)
    opt_a = SparseAdam(emb_a.parameters(), lr=0.05)
    opt_b = torch.optim.SparseAdam(emb_b.parameters(), lr=0.05)
    head_opt_a = torch.optim.SGD(head_a.parameters(), lr=0.05)
    head_opt_b = torch.optim.SGD(head_b.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        words = torch.randint(0, 20, (8, 3), generator=gen)
        target = torch.randn(8, 1, generator=gen)
        for emb, head, opts in ((emb_a, head_a, (opt_a, head_opt_a)),
                                (emb_b, head_b, (opt_b, head_opt_b))):
            for opt in opts:
                opt.zero_grad()
            F.mse_loss(head(emb(words).mean(dim=1)), target).backward()
            assert emb.weight.grad.is_sparse
            for opt in opts:
                opt.step()
    assert torch.equal(emb_a.weight, emb_b.weight) and torch.equal(head_a.weight, head_b.weight)


def test_only_the_looked_up_rows_change():
    p = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    state = sparse_adam_init(p)
    grad = torch.sparse_coo_tensor([[1, 4, 1]], torch.ones(3, 2, dtype=torch.float64), (6, 2))
    new_p, new_state = sparse_adam_step(p, grad, state, lr=0.1)
    touched = torch.tensor([False, True, False, False, True, False])
    assert torch.equal(new_p[~touched], p[~touched])
    assert (new_p[touched] != p[touched]).all()
    for key in ("exp_avg", "exp_avg_sq"):
        assert (new_state[key][~touched] == 0).all() and (new_state[key][touched] != 0).all()
    # row 1 appeared twice: its gradient is the sum, 2, as after coalescing
    assert new_state["exp_avg"][1].tolist() == pytest.approx([0.2, 0.2], rel=1e-12)


def test_first_step_against_hand_computation():
    """Step 1: m = (1−β₁)g, v = (1−β₂)g², and the step η·√(1−β₂)/(1−β₁)·m/(√v + ϵ)."""
    lr, b1, b2, eps, g = 0.1, 0.9, 0.999, 1e-8, -0.5
    p = torch.zeros(3, 1, dtype=torch.float64)
    grad = torch.sparse_coo_tensor([[2]], [[g]], (3, 1), dtype=torch.float64)
    new_p, state = sparse_adam_step(p, grad, sparse_adam_init(p), lr=lr, eps=eps)
    m, v = (1 - b1) * g, (1 - b2) * g * g
    expected = -lr * (1 - b2) ** 0.5 / (1 - b1) * m / (v ** 0.5 + eps)
    assert new_p[2, 0].item() == pytest.approx(expected, rel=1e-12)
    assert new_p[:2].abs().sum() == 0 and state["step"] == 1 and type(state["step"]) is int


def test_an_empty_gradient_counts_the_step_and_changes_nothing_else():
    """As in torch: ``step`` advances (so later bias corrections differ), nothing else moves."""
    ours_p = torch.randn(4, 2, generator=torch.Generator().manual_seed(0)).requires_grad_()
    theirs_p = ours_p.detach().clone().requires_grad_()
    ours, theirs = SparseAdam([ours_p], lr=0.1), torch.optim.SparseAdam([theirs_p], lr=0.1)
    empty = torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.long), torch.zeros(0, 2),
                                    (4, 2))
    one = torch.sparse_coo_tensor([[3]], [[1.0, -1.0]], (4, 2))
    for grad in (empty, one, empty, one):
        before = ours_p.detach().clone()
        ours_p.grad, theirs_p.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
        assert torch.equal(ours_p, theirs_p)
        if grad._nnz() == 0:
            assert torch.equal(ours_p, before)
    assert ours.state[ours_p]["step"] == theirs.state[theirs_p]["step"] == 4


def test_a_dense_gradient_is_refused_before_anything_changes():
    a, b = torch.zeros(3, 2, requires_grad=True), torch.zeros(3, 2, requires_grad=True)
    opt = SparseAdam([a, b])
    a.grad = torch.sparse_coo_tensor([[0]], [[1.0, 1.0]], (3, 2))
    b.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
        opt.step()
    assert not opt.state and (a == 0).all()


def test_pure_step_matches_class_and_does_not_mutate(dtype, device):
    kwargs = dict(lr=0.05, betas=(0.8, 0.95), maximize=True)
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(8, 3, generator=gen, dtype=dtype).to(device)
    state = sparse_adam_init(p)
    opt_p = p.clone().requires_grad_()
    opt = SparseAdam([opt_p], **kwargs)
    for _ in range(10):
        rows = torch.randint(0, 8, (1, 4), generator=gen)
        g = torch.sparse_coo_tensor(rows, torch.randn(4, 3, generator=gen, dtype=dtype),
                                    (8, 3)).to(device)
        p_before, g_before = p.clone(), g.clone()
        state_before = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
        new_p, new_state = sparse_adam_step(p, g, state, **kwargs)
        assert torch.equal(p, p_before), "param was mutated"
        assert torch.equal(g.to_dense(), g_before.to_dense()), "grad was mutated"
        for key, value in state_before.items():
            assert (torch.equal(state[key], value) if torch.is_tensor(value)
                    else state[key] == value), f"state[{key!r}] was mutated"
        opt_p.grad = g.clone()
        opt.step()
        assert torch.equal(new_p, opt_p.detach())
        for key, value in opt.state[opt_p].items():
            assert (torch.equal(new_state[key], value) if torch.is_tensor(value)
                    else new_state[key] == value)
        p, state = new_p, new_state


def test_a_tensor_learning_rate_matches_torchs():
    """Ours overrides ``step`` (for sparse gradients), so it squeezes a one-element ``lr`` the
    way torch does itself."""
    for lr in (torch.tensor(0.02), torch.tensor([0.02])):
        ours, theirs = make(dict(lr=lr))
        lockstep(ours, theirs, make_tables(torch.float32, "cpu"), sparse_grads, steps=30)


def test_meta_device():
    """Torch cannot coalesce a sparse meta tensor; ours counts the step and keeps the dense
    state on meta."""
    p = torch.empty(5, 3, device="meta", requires_grad=True)
    opt = SparseAdam([p])
    for _ in range(2):
        p.grad = torch.sparse_coo_tensor(torch.empty(1, 2, dtype=torch.long, device="meta"),
                                         torch.empty(2, 3, device="meta"), (5, 3),
                                         check_invariants=False)
        opt.step()
    state = opt.state[p]
    assert state["step"] == 2
    for key in ("exp_avg", "exp_avg_sq"):
        assert state[key].device.type == "meta" and state[key].shape == (5, 3)


P = torch.zeros(3, 2)
G = torch.sparse_coo_tensor([[0]], [[1.0, 1.0]], (3, 2), check_invariants=True)
STATE = sparse_adam_init(P)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: SparseAdam([P], lr=-0.1), ValueError, r"Invalid learning rate: -0.1"),
    (lambda: SparseAdam([P], lr=0.0), ValueError, r"Invalid learning rate: 0.0 \(SparseAdam"),
    (lambda: SparseAdam([P], eps=0.0), ValueError, r"Invalid epsilon value: 0.0"),
    (lambda: SparseAdam([P], betas=(1.0, 0.9)), ValueError,
     r"Invalid beta parameter at index 0: 1.0"),
    (lambda: SparseAdam([P], betas=(0.9, -0.1)), ValueError,
     r"Invalid beta parameter at index 1: -0.1"),
    (lambda: SparseAdam([P.to_sparse()]), ValueError,
     r"Sparse params at indices \[\[0, 0\]\]: SparseAdam requires dense parameter tensors"),
    (lambda: SparseAdam([P, torch.zeros(2, dtype=torch.complex64)]), ValueError,
     r"Complex params at indices \[\[0, 1\]\]"),
    (lambda: sparse_adam_step(P, torch.ones(3, 2), STATE), RuntimeError,
     r"SparseAdam does not support dense gradients, please consider Adam instead"),
    (lambda: sparse_adam_step(P, G, {"step": 0}), ValueError,
     r"state has no 'exp_avg'; create the state with sparse_adam_init\(param\)"),
    (lambda: sparse_adam_step(P, G, STATE | {"step": -1}), TypeError,
     r"expected state\['step'\] to be an int >= 0, got -1"),
    (lambda: sparse_adam_step(P, G.double(), STATE), TypeError,
     r"grad has dtype torch.float64 but param has dtype torch.float32"),
    (lambda: sparse_adam_step(torch.zeros(4, 2), G, sparse_adam_init(torch.zeros(4, 2))),
     ValueError, r"grad has shape \(3, 2\) but param has shape \(4, 2\)"),
    (lambda: sparse_adam_step(P, G, STATE, eps=-1.0), ValueError, r"Invalid epsilon value"),
    (lambda: sparse_adam_init(P.to_sparse()), ValueError, r"requires a dense parameter"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
