"""nnbolts.train: fit, History, EarlyStopping, save_checkpoint / load_checkpoint.

The central property: a run interrupted after any epoch and resumed from its checkpoint with
*fresh* objects is bit-identical (torch.equal, exact history) to the uninterrupted run on CPU.
"""

from __future__ import annotations

import math
import os
import random
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nnbolts.optim
from nnbolts import schedules
from nnbolts.data import make_blobs, minibatches, num_batches
from nnbolts.train import (
    CheckpointError,
    EarlyStopping,
    History,
    accuracy,
    evaluate,
    fit,
    load_checkpoint,
    save_checkpoint,
)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models on a shared 2-core machine: several threads only fight over the cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def blobs(n=96, seed=0, dtype=torch.float64, device="cpu"):
    return make_blobs(
        n, centers=3, std=1.5, generator=torch.Generator().manual_seed(seed), dtype=dtype,
        device=device,
    )  # fmt: skip


def net(seed=0, dropout=0.2, dtype=torch.float64, device="cpu"):
    torch.manual_seed(seed)
    layers = [nn.Linear(2, 16), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(16, 3))
    return nn.Sequential(*layers).to(dtype=dtype, device=device)


def same_parameters(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def same_state(a, b) -> bool:
    """Deep equality of nested dicts/lists of tensors and numbers (optimizer state dicts)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, z) for x, z in zip(a, b, strict=True))
    return a == b


# ---------------------------------------------------------------------------------------------
# History


def test_history_round_trip_and_counts():
    h = History()
    h.extend_steps([torch.tensor(0.5), torch.tensor(0.25)], [0.1, 0.1])
    h.log_epoch({"train_loss": 0.375, "val_loss": 0.4})
    h.extend_steps([0.125], [0.05])
    h.log_epoch({"train_loss": 0.125, "val_loss": 0.3})
    h.best_epoch = 2
    assert (h.epoch, h.steps) == (2, 3)
    assert h.step_loss == [0.5, 0.25, 0.125] and h.step_lr == [0.1, 0.1, 0.05]
    again = History.from_dict(h.to_dict())
    assert again == h and again is not h
    assert "epochs=2" in repr(h) and "val_loss=0.3" in repr(h)
    with pytest.raises(ValueError, match="2 step losses but 1 learning rates"):
        h.extend_steps([0.1, 0.2], [0.1])


def test_history_plot_delegates_to_nnbolts_plot(monkeypatch):
    calls = []
    fake = types.ModuleType("nnbolts.plot")
    fake.plot_histories = lambda histories, **kw: calls.append((histories, kw)) or "axes"
    monkeypatch.setitem(sys.modules, "nnbolts.plot", fake)
    h = History(epochs={"train_loss": [1.0]})
    assert h.plot(per="step", logy=True) == "axes"
    assert calls == [({"run": h}, {"per": "step", "logy": True})]


# ---------------------------------------------------------------------------------------------
# EarlyStopping on scripted validation curves


@pytest.mark.parametrize(
    "curve, kwargs, best_epoch, stopped_epoch",
    [
        # improves until epoch 3, then 2 epochs without improvement: stop after epoch 5
        ([1.0, 0.8, 0.7, 0.75, 0.72, 0.5], dict(patience=2), 3, 5),
        # patience 0: the first epoch that does not improve stops
        ([1.0, 0.9, 0.95, 0.1], dict(patience=0), 2, 3),
        # equal is not an improvement
        ([1.0, 1.0, 1.0], dict(patience=2), 1, 3),
        # improvements of at most min_delta do not count (0.95 is only 0.05 better)
        ([1.0, 0.95, 0.9, 0.89], dict(patience=3, min_delta=0.05), 3, None),
        ([1.0, 0.96, 0.93, 0.91], dict(patience=2, min_delta=0.05), 3, None),
        ([1.0, 0.96, 0.955, 0.92], dict(patience=2, min_delta=0.05), 1, 3),
        # mode="max" (an accuracy): higher is better
        ([0.5, 0.6, 0.55, 0.58, 0.59], dict(patience=3, mode="max"), 2, 5),
        # a NaN never improves, and it does not reset the counter
        ([1.0, float("nan"), 0.9, float("nan"), float("nan")], dict(patience=2), 3, 5),
        # never stops when the curve keeps improving
        ([5.0, 4.0, 3.0, 2.0, 1.0], dict(patience=1), 5, None),
    ],
)
def test_early_stopping_rule(curve, kwargs, best_epoch, stopped_epoch):
    stopper = EarlyStopping(**kwargs)
    stopped_at = None
    for epoch, value in enumerate(curve, start=1):
        if stopper.update(value):
            stopped_at = epoch
            break
    assert stopped_at == stopped_epoch == stopper.stopped_epoch
    assert stopper.best_epoch == best_epoch
    assert stopper.should_stop == (stopped_epoch is not None)


def test_early_stopping_keeps_and_restores_the_best_weights():
    model = nn.Linear(3, 1, dtype=torch.float64)
    stopper = EarlyStopping(patience=1)
    for value, fill in [(1.0, 1.0), (0.5, 2.0), (0.7, 3.0)]:
        with torch.no_grad():
            model.weight.fill_(fill)
        stop = stopper.update(value, model)
    assert stop and stopper.best_epoch == 2
    assert stopper.restore(model)
    assert torch.equal(model.weight, torch.full((1, 3), 2.0, dtype=torch.float64))
    # the kept copy is a clone, not a view of the live weights
    with torch.no_grad():
        model.weight.fill_(9.0)
    assert torch.equal(stopper.best_state["weight"], torch.full((1, 3), 2.0, dtype=torch.float64))
    assert not EarlyStopping(patience=1, restore_best=False).restore(model)


def test_early_stopping_state_round_trip():
    model = nn.Linear(2, 2)
    a = EarlyStopping(patience=3, min_delta=0.01)
    for value in [1.0, 0.5, 0.6]:
        a.update(value, model)
    b = EarlyStopping(patience=3, min_delta=0.01)
    b.load_state_dict(a.state_dict(), model=model)
    assert (b.best, b.best_epoch, b.wait, b.epoch) == (0.5, 2, 1, 3)
    assert same_state(b.best_state, a.best_state)
    with pytest.raises(ValueError, match="mode='max'"):
        EarlyStopping(patience=3, mode="max").load_state_dict(a.state_dict())


def test_fit_early_stopping_stops_and_restores():
    """monitor train_loss in mode "max": the loss falls, so only epoch 1 is ever 'best'."""
    X, y = blobs()
    first = net(dropout=0)
    fit(first, F.cross_entropy, torch.optim.SGD(first.parameters(), lr=0.1), (X, y),
        epochs=1, batch_size=16, generator=torch.Generator().manual_seed(1))  # fmt: skip

    model = net(dropout=0)
    stopper = EarlyStopping(patience=2, mode="max", monitor="train_loss")
    history = fit(
        model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=10,
        batch_size=16, early_stopping=stopper, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    losses = history.epochs["train_loss"]
    assert losses[1] < losses[0] and losses[2] < losses[0]
    assert (history.best_epoch, history.stopped_epoch, history.epoch) == (1, 3, 3)
    assert same_parameters(model, first)  # the weights of epoch 1 are back


def test_fit_early_stopping_on_validation_loss_restores_best():
    X, y = blobs(96, seed=0)
    Xv, yv = blobs(60, seed=5)
    model = net(dropout=0)
    stopper = EarlyStopping(patience=2)
    history = fit(
        model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=2.0, momentum=0.9),
        (X, y), val=(Xv, yv), epochs=40, batch_size=8, early_stopping=stopper,
    )  # fmt: skip
    val = history.epochs["val_loss"]
    assert all(math.isfinite(v) for v in val)
    best = history.best_epoch
    assert history.stopped_epoch is not None, "lr=2 with momentum must stop improving"
    assert best == 1 + min(range(len(val)), key=val.__getitem__)
    assert history.stopped_epoch == history.epoch
    assert evaluate(model, F.cross_entropy, (Xv, yv))["val_loss"] == pytest.approx(
        val[best - 1], rel=1e-12
    )


# ---------------------------------------------------------------------------------------------
# checkpoints: save, load, atomic write, errors


def _small_state(tmp_path, name="ck.pt"):
    model = net(dropout=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    X, y = blobs(32)
    F.cross_entropy(model(X), y).backward()
    opt.step()
    history = History(step_loss=[1.0], step_lr=[0.01], epochs={"train_loss": [1.0]})
    path = tmp_path / name
    save_checkpoint(path, model=model, optimizer=opt, epoch=1, history=history)
    return path, model, opt, history


def test_checkpoint_round_trip_restores_everything(tmp_path):
    model = net(dropout=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    X, y = blobs(32)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()
        sched.step()
    stopper = EarlyStopping(patience=4)
    stopper.update(0.3, model)
    gen = torch.Generator().manual_seed(11)
    torch.randperm(10, generator=gen)
    history = History(step_loss=[0.3, 0.2, 0.1], step_lr=[0.1, 0.1, 0.05],
                      epochs={"train_loss": [0.2]}, best_epoch=1)  # fmt: skip
    path = tmp_path / "sub" / "run.pt"  # the directory is created
    save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, epoch=1, history=history,
                    early_stopping=stopper, generator=gen, extra={"note": "hi", "t": torch.ones(2)})
    expected = (torch.rand(3), torch.rand(3, generator=gen), random.random(), np.random.rand())

    # scramble every generator and build fresh objects
    torch.manual_seed(999)
    random.seed(999)
    np.random.seed(999)
    gen2 = torch.Generator().manual_seed(999)
    model2 = net(seed=5, dropout=0)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    stopper2 = EarlyStopping(patience=4)
    info = load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2,
                           early_stopping=stopper2, generator=gen2)  # fmt: skip
    got = (torch.rand(3), torch.rand(3, generator=gen2), random.random(), np.random.rand())

    assert info["epoch"] == 1 and info["step"] == 3 and info["history"] == history
    assert info["extra"]["note"] == "hi" and torch.equal(info["extra"]["t"], torch.ones(2))
    assert same_parameters(model, model2)
    assert same_state(opt.state_dict(), opt2.state_dict())
    assert sched2.state_dict() == sched.state_dict()
    assert (stopper2.best, stopper2.best_epoch) == (0.3, 1)
    assert same_state(stopper2.best_state, stopper.best_state)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert got[2:] == expected[2:]


def test_checkpoint_of_an_nnbolts_schedule_adapter_loads_safely(tmp_path):
    model = net(dropout=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = schedules.to_lambda_lr(opt, schedules.warmup(schedules.cosine(0.1, 50), 5))
    for _ in range(7):
        opt.step()
        sched.step()
    path = tmp_path / "s.pt"
    save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, epoch=1, history=History())
    opt2 = torch.optim.SGD(model.parameters(), lr=0.1)
    sched2 = schedules.to_lambda_lr(opt2, schedules.warmup(schedules.cosine(0.1, 50), 5))
    load_checkpoint(path, model=model, optimizer=opt2, scheduler=sched2)  # weights_only=True
    assert sched2.last_epoch == 7 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    with pytest.raises(CheckpointError, match="StepLR"):
        load_checkpoint(path, model=model, optimizer=opt2,
                        scheduler=torch.optim.lr_scheduler.StepLR(opt2, 3))  # fmt: skip


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path, model, opt, history = _small_state(tmp_path)
    before = path.read_bytes()
    real_save = torch.save

    def dies_half_way(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model=model, optimizer=opt, epoch=2, history=history)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.pt"]  # no temporary file left behind
    assert load_checkpoint(path, model=model, optimizer=opt)["epoch"] == 1


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


def _foreign(path):
    torch.save({"model": {}, "epoch": 3}, path)


def _newer(path):
    data = torch.load(path, weights_only=True)
    data["version"] = 99
    torch.save(data, path)


def _with_object(path):
    data = torch.load(path, weights_only=True)
    data["extra"] = {"obj": types.SimpleNamespace(a=1)}
    torch.save(data, path)


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (lambda p: p.unlink(), FileNotFoundError, r"checkpoint .*ck\.pt does not exist"),
        (_truncate, CheckpointError, "is corrupt or truncated"),
        (lambda p: p.write_bytes(b""), CheckpointError, "is corrupt or truncated"),
        (lambda p: p.write_bytes(b"not a checkpoint" * 64), CheckpointError, "corrupt or trunc"),
        (_flip_bytes, CheckpointError, "corrupt or truncated"),
        (_foreign, CheckpointError, "is not an nnbolts checkpoint"),
        (_newer, CheckpointError, "format version 99"),
        (_with_object, CheckpointError, "weights_only=False"),
    ],
    ids=["missing", "truncated", "empty", "garbage", "flipped", "foreign", "newer", "unsafe"],
)
def test_load_checkpoint_errors(tmp_path, damage, error, message):
    path, _, _, _ = _small_state(tmp_path)
    damage(path)
    model = net(seed=3, dropout=0)
    untouched = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error, match=message):
        load_checkpoint(path, model=model, optimizer=torch.optim.Adam(model.parameters()))
    assert all(torch.equal(untouched[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "other, message",
    [
        (lambda: nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 3)),
         r"key '0\.weight' has shape \(16, 2\) in the checkpoint but \(32, 2\)"),
        (lambda: nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3), nn.Linear(3, 3)),
         r"it has no entry for key '3\.weight'"),
        (lambda: nn.Sequential(nn.Linear(2, 16), nn.Tanh()),
         r"key '2\.weight' is not in this model"),
    ],
    ids=["shape", "missing-key", "unexpected-key"],
)
def test_checkpoint_from_another_model(tmp_path, other, message):
    path, _, _, _ = _small_state(tmp_path)
    model = other().double()
    untouched = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="from a different model: " + message):
        load_checkpoint(path, model=model, optimizer=torch.optim.Adam(model.parameters()))
    assert all(torch.equal(untouched[k], v) for k, v in model.state_dict().items())


def test_checkpoint_optimizer_mismatch(tmp_path):
    path, _, _, _ = _small_state(tmp_path)
    model = net(dropout=0)
    opt = torch.optim.Adam([{"params": model[0].parameters()}, {"params": model[2].parameters()}])
    with pytest.raises(CheckpointError, match="2 parameter groups but the checkpoint's has 1"):
        load_checkpoint(path, model=model, optimizer=opt)


def test_a_trusted_file_with_objects_loads_with_weights_only_false(tmp_path):
    path, model, opt, _ = _small_state(tmp_path)
    _with_object(path)
    info = load_checkpoint(path, model=model, optimizer=opt, weights_only=False)
    assert info["extra"]["obj"].a == 1


# ---------------------------------------------------------------------------------------------
# fit: what one epoch does


def test_fit_equals_the_hand_written_loop():
    X, y = blobs()
    a, b = net(dropout=0), net(dropout=0)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    history = fit(a, F.cross_entropy, opt_a, (X, y), epochs=3, batch_size=20,
                  generator=torch.Generator().manual_seed(4))  # fmt: skip
    gen, losses = torch.Generator().manual_seed(4), []
    for _ in range(3):
        for xb, yb in minibatches(X, y, 20, generator=gen):
            opt_b.zero_grad()
            loss = F.cross_entropy(b(xb), yb)
            loss.backward()
            opt_b.step()
            losses.append(loss.item())
    assert same_parameters(a, b)
    assert history.step_loss == losses
    per_epoch = num_batches(96, 20)
    sizes = [20] * 4 + [16]
    expected = [
        math.fsum(v * n for v, n in zip(losses[e * 5 : e * 5 + 5], sizes, strict=True)) / 96
        for e in range(3)
    ]
    assert per_epoch == 5 and history.epochs["train_loss"] == pytest.approx(expected, rel=1e-14)
    assert history.step_lr == [0.1] * 15 and history.best_epoch is None


@pytest.mark.parametrize("batch_size", [None, 1, 8], ids=["full-batch", "online", "minibatch"])
def test_batch_online_and_minibatch_reach_the_same_minimum(batch_size):
    # noise-free linear regression: every sample's gradient vanishes at w*, so all three flavours
    # converge to it with a constant learning rate.
    g = torch.Generator().manual_seed(0)
    X = torch.randn(24, 3, generator=g, dtype=torch.float64)
    w_star = torch.tensor([[1.5], [-2.0], [0.5]], dtype=torch.float64)
    y = X @ w_star
    model = nn.Linear(3, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.zero_()
    epochs = {None: 400, 1: 40, 8: 120}[batch_size]
    fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1), (X, y),
        epochs=epochs, batch_size=batch_size)  # fmt: skip
    assert torch.allclose(model.weight.T, w_star, atol=1e-6)


def test_fit_records_validation_and_metrics():
    X, y = blobs(96)
    Xv, yv = blobs(45, seed=3)
    model = net(dropout=0)
    history = fit(model, F.cross_entropy, torch.optim.Adam(model.parameters(), lr=0.05), (X, y),
                  val=(Xv, yv), epochs=4, batch_size=32, metrics={"acc": accuracy},
                  eval_batch_size=16)  # fmt: skip
    assert set(history.epochs) == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert all(len(v) == 4 for v in history.epochs.values())
    assert all(0.0 <= a <= 1.0 for a in history.epochs["train_acc"] + history.epochs["val_acc"])
    final = evaluate(model, F.cross_entropy, (Xv, yv), metrics={"acc": accuracy}, batch_size=None)
    assert final["val_loss"] == pytest.approx(history.epochs["val_loss"][-1], rel=1e-12)
    assert final["val_acc"] == pytest.approx(history.epochs["val_acc"][-1], rel=1e-12)
    assert model.training  # fit/evaluate leave the model in training mode


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 0, 0])).item() == 0.75
    binary = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    assert accuracy(binary, torch.tensor([1, 0, 0, 0])).item() == 0.75
    assert accuracy(binary.view(-1), torch.tensor([1.0, 0.0, 1.0, 1.0])).item() == 0.75
    assert accuracy(logits.double(), torch.tensor([0, 1, 2, 0])).dtype == torch.float64
    with pytest.raises(ValueError, match="4 predictions but y has 3"):
        accuracy(logits, torch.tensor([0, 1, 2]))


def test_schedules_set_the_learning_rate_of_every_step():
    X, y = blobs(64)
    sched = schedules.step_decay(0.1, step_size=3, gamma=0.5)
    model = net(dropout=0)
    opt = torch.optim.SGD([{"params": model[0].parameters()},
                           {"params": model[2].parameters(), "lr": 7.0}], lr=1.0)  # fmt: skip
    h = fit(model, F.cross_entropy, opt, (X, y), epochs=2, batch_size=16, schedule=sched)
    assert h.step_lr == [sched(k) for k in range(8)]
    assert [g["lr"] for g in opt.param_groups] == [sched(7)] * 2  # every group set

    model = net(dropout=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lambda_lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t))
    h = fit(model, F.cross_entropy, opt, (X, y), epochs=2, batch_size=16, schedule=lambda_lr)
    assert h.step_lr == pytest.approx([0.1 / (1 + k) for k in range(8)], rel=1e-15)

    model = net(dropout=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    per_epoch = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = fit(model, F.cross_entropy, opt, (X, y), epochs=3, batch_size=32, schedule=per_epoch,
            schedule_per="epoch")  # fmt: skip
    assert h.step_lr == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]

    model = net(dropout=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.5)
    h = fit(model, F.cross_entropy, opt, (X, y), epochs=4, batch_size=64, schedule=plateau)
    # stepped once per epoch with the train loss, which falls: in mode "max" epoch 1 sets the
    # best, and every later epoch is a bad one that halves the rate for the next epoch
    assert h.step_lr == [0.1, 0.1, 0.05, 0.025]

    model = net(dropout=0)  # a tensor lr, updated in place by its scheduler
    opt = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.1, dtype=torch.float64))
    halving = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = fit(model, F.cross_entropy, opt, (X, y), epochs=1, batch_size=16, schedule=halving)
    assert h.step_lr == [0.1, 0.05, 0.025, 0.0125]


def test_losses_are_read_once_per_epoch_not_per_step(monkeypatch):
    """No per-step device synchronisation: the number of tensor -> Python conversions does not
    depend on the number of steps."""
    X, y = blobs(96)
    Xv, yv = blobs(30, seed=2)
    counts = {}

    def counting(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return original(self, *args, **kwargs)

        return wrapper

    def conversions(batch_size):
        counts.clear()
        model = net(dropout=0.1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        with monkeypatch.context() as m:
            for name in ("item", "tolist", "__float__", "__bool__", "cpu", "numpy"):
                m.setattr(torch.Tensor, name, counting(name))
            fit(model, F.cross_entropy, opt, (X, y), val=(Xv, yv), epochs=3,
                batch_size=batch_size, metrics={"acc": accuracy})  # fmt: skip
        return dict(counts)

    few, many = conversions(48), conversions(4)  # 2 vs 24 steps per epoch
    assert few == many
    assert few.get("tolist", 0) <= 2 * 3 and "item" not in few


def test_default_data_order_follows_torch_manual_seed():
    X, y = blobs(64)

    def run(seed):
        model = net(dropout=0)
        torch.manual_seed(seed)
        return fit(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), (X, y),
                   epochs=2, batch_size=8).step_loss  # fmt: skip

    assert run(1) == run(1) and run(1) != run(2)


@pytest.mark.parametrize("name", ["nnbolts.SGD", "torch.Adam", "torch.RMSprop"])
def test_fit_with_other_optimizers(name):
    X, y = blobs(64)
    model = net(dropout=0)
    make = {
        "nnbolts.SGD": lambda p: nnbolts.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        "torch.Adam": lambda p: torch.optim.Adam(p, lr=0.02),
        "torch.RMSprop": lambda p: torch.optim.RMSprop(p, lr=0.01),
    }[name]
    h = fit(model, F.cross_entropy, make(model.parameters()), (X, y), epochs=5, batch_size=16,
            metrics={"python_float": lambda output, y: 0.5})  # fmt: skip
    assert h.epochs["train_python_float"] == [0.5] * 5
    assert h.epochs["train_loss"][-1] < h.epochs["train_loss"][0]


def test_fit_on_every_device_and_dtype(device, dtype):
    X, y = blobs(64, dtype=dtype, device=device)
    model = net(dropout=0.1, dtype=dtype, device=device)
    h = fit(model, F.cross_entropy, torch.optim.Adam(model.parameters(), lr=0.02), (X, y),
            val=(X, y), epochs=3, batch_size=16, metrics={"acc": accuracy},
            early_stopping=EarlyStopping(patience=5))  # fmt: skip
    assert all(math.isfinite(v) for v in h.step_loss + h.epochs["val_loss"])
    assert all(p.device.type == torch.device(device).type and p.dtype == dtype
               for p in model.parameters())  # fmt: skip


# ---------------------------------------------------------------------------------------------
# exact resume


class CrashAfter:
    """A loss that raises after ``n`` training calls: a job killed in the middle of an epoch."""

    def __init__(self, n):
        self.n = n

    def __call__(self, output, y):
        if torch.is_grad_enabled():
            self.n -= 1
            if self.n < 0:
                raise KeyboardInterrupt("killed")
        return F.cross_entropy(output, y)


def _setup(kind, seed=0):
    """Fresh model, optimizer, schedule, stopper, generator; ``seed`` scrambles everything that
    the checkpoint must restore."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    model = net(seed=seed, dropout=0.25)
    if kind == "sgd-momentum+steplr":
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-3)
        schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.8)
    elif kind == "adam+nnbolts-schedule":
        opt = torch.optim.Adam(model.parameters(), lr=1.0)
        schedule = schedules.warmup(schedules.cosine(0.05, 40), 5)
    else:  # nnbolts' SGD driven by the LambdaLR adapter
        opt = nnbolts.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        schedule = schedules.to_lambda_lr(opt, schedules.exponential(0.1, 0.97))
    stopper = EarlyStopping(patience=50)
    generator = torch.Generator().manual_seed(1234 + seed)
    return model, opt, schedule, stopper, generator


RESUME_KINDS = ["sgd-momentum+steplr", "adam+nnbolts-schedule", "nnbolts-sgd+lambda-lr"]


@pytest.mark.parametrize("kind", RESUME_KINDS)
@pytest.mark.parametrize("how", ["stop-after-3", "killed-in-epoch-4"])
def test_resumed_run_is_bit_identical(tmp_path, kind, how):
    X, y = blobs(100)
    Xv, yv = blobs(40, seed=9)
    common = dict(val=(Xv, yv), epochs=6, batch_size=16, metrics={"acc": accuracy})

    model, opt, schedule, stopper, _ = _setup(kind)
    straight = fit(model, F.cross_entropy, opt, (X, y), schedule=schedule, early_stopping=stopper,
                   **common)  # fmt: skip
    # restore_best loaded the best weights at the end; compare the final ones too
    final_weights = {k: v.clone() for k, v in stopper.best_state.items()}
    rng_after_straight = torch.get_rng_state()

    path = tmp_path / "run.pt"
    model2, opt2, schedule2, stopper2, _ = _setup(kind)
    if how == "stop-after-3":
        fit(model2, F.cross_entropy, opt2, (X, y), schedule=schedule2, early_stopping=stopper2,
            checkpoint=path, **{**common, "epochs": 3})  # fmt: skip
        assert load_checkpoint(path, model=net(dropout=0.25), optimizer=None)["epoch"] == 3
    else:
        steps = num_batches(100, 16)
        with pytest.raises(KeyboardInterrupt):
            fit(model2, CrashAfter(3 * steps + 2), opt2, (X, y), schedule=schedule2,
                early_stopping=stopper2, checkpoint=path, checkpoint_every=2, **common)
        assert load_checkpoint(path, model=net(dropout=0.25), optimizer=None)["epoch"] == 2

    model3, opt3, schedule3, stopper3, _ = _setup(kind, seed=77)  # different init and RNGs
    resumed = fit(model3, F.cross_entropy, opt3, (X, y), schedule=schedule3,
                  early_stopping=stopper3, checkpoint=path, resume=True, **common)  # fmt: skip

    assert resumed == straight  # every step loss, lr and epoch value, exactly
    assert same_parameters(model3, model)
    assert same_state(opt3.state_dict(), opt.state_dict())
    assert same_state(stopper3.best_state, final_weights)
    if isinstance(schedule, torch.optim.lr_scheduler.LRScheduler):
        assert schedule3.state_dict()["last_epoch"] == schedule.state_dict()["last_epoch"]
    assert torch.equal(torch.get_rng_state(), rng_after_straight)  # dropout draws continued
    assert load_checkpoint(path, model=net(dropout=0.25), optimizer=None)["epoch"] == 6


def test_resume_with_the_default_generator_and_global_rng(tmp_path):
    """No generator given: the default one is checkpointed too; the global RNG after resuming
    continues exactly as in the straight run."""
    X, y = blobs(64)

    def setup(seed):
        torch.manual_seed(seed)
        model = net(seed=seed)
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)

    model, opt = setup(5)
    straight = fit(model, F.cross_entropy, opt, (X, y), epochs=4, batch_size=8)
    after_straight = torch.rand(3)

    path = tmp_path / "d.pt"
    model2, opt2 = setup(5)
    fit(model2, F.cross_entropy, opt2, (X, y), epochs=2, batch_size=8, checkpoint=path)
    model3, opt3 = setup(6)
    resumed = fit(model3, F.cross_entropy, opt3, (X, y), epochs=4, batch_size=8, checkpoint=path,
                  resume=True)  # fmt: skip
    assert resumed == straight and same_parameters(model3, model)
    assert torch.equal(torch.rand(3), after_straight)


def test_resume_without_a_checkpoint_starts_fresh_and_a_finished_run_stays_finished(tmp_path):
    X, y = blobs(64)
    path = tmp_path / "new.pt"
    model = net(dropout=0)
    h = fit(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), (X, y),
            epochs=2, batch_size=32, checkpoint=path, resume=True)  # fmt: skip
    assert path.exists() and h.epoch == 2

    stopper = EarlyStopping(patience=0, mode="max", monitor="train_loss")
    model = net(dropout=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    done = fit(model, F.cross_entropy, opt, (X, y), epochs=10, batch_size=32,
               early_stopping=stopper, checkpoint=path)  # fmt: skip
    assert done.stopped_epoch == 2
    again = fit(model, F.cross_entropy, opt, (X, y), epochs=10, batch_size=32,
                early_stopping=EarlyStopping(patience=0, mode="max", monitor="train_loss"),
                checkpoint=path, resume=True)  # fmt: skip
    assert again == done


# ---------------------------------------------------------------------------------------------
# progress bar


def _quick_fit(progress):
    X, y = blobs(32)
    model = net(dropout=0)
    fit(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=2,
        batch_size=16, progress=progress)  # fmt: skip


def test_progress_is_quiet_when_not_a_terminal(capsys):
    _quick_fit(True)
    assert capsys.readouterr() == ("", "")


def test_progress_shows_when_forced(capsys):
    _quick_fit("always")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "epoch 2/2" in captured.err and "2/2" in captured.err and "train_loss" in captured.err


def test_progress_shows_on_a_terminal_unless_ci(capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _quick_fit(True)
    assert "epoch 1/2" in capsys.readouterr().err
    monkeypatch.setenv("CI", "true")
    _quick_fit(True)
    assert capsys.readouterr().err == ""
    _quick_fit(False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------
# bad input


def _args(**changes):
    X, y = blobs(32)
    model = net(dropout=0)
    args = dict(model=model, loss_fn=F.cross_entropy,
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1), train=(X, y),
                epochs=1, batch_size=8, progress=False)  # fmt: skip
    args.update(changes)
    return args


def _corrupt_checkpoint(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    return dict(checkpoint=path, resume=True)


def _other_model_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    other = nn.Linear(2, 3).double()
    save_checkpoint(path, model=other, optimizer=torch.optim.SGD(other.parameters(), lr=1),
                    epoch=1, history=History())  # fmt: skip
    return dict(checkpoint=path, resume=True)


def _foreign_scheduler():
    return torch.optim.lr_scheduler.StepLR(
        torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1), 1
    )


BAD_INPUT = [
    ("batch-size-0", lambda t: dict(batch_size=0), ValueError, r"Invalid batch_size: 0"),
    ("batch-size-neg", lambda t: dict(batch_size=-4), ValueError, r"Invalid batch_size: -4"),
    ("batch-size-float", lambda t: dict(batch_size=8.0), TypeError, r"batch_size to be an int"),
    ("epochs-0", lambda t: dict(epochs=0), ValueError, r"Invalid epochs: 0"),
    ("length-mismatch", lambda t: dict(train=(torch.zeros(32, 2).double(), torch.zeros(31))),
     ValueError, r"train X has 32 samples but train y has 31"),
    ("empty", lambda t: dict(train=(torch.zeros(0, 2).double(), torch.zeros(0))), ValueError,
     "empty dataset"),
    ("val-mismatch", lambda t: dict(val=(torch.zeros(5, 2).double(), torch.zeros(4))),
     ValueError, r"val X has 5 samples but val y has 4"),
    ("not-a-pair", lambda t: dict(train=torch.zeros(3, 2)), TypeError, r"pair \(X, y\)"),
    ("device-mismatch", lambda t: dict(model=net(dropout=0).to("meta")), ValueError,
     r"the model is on meta but train X is on cpu"),
    ("patience-neg", lambda t: dict(early_stopping=EarlyStopping(patience=-1)), ValueError,
     r"Invalid patience: -1"),
    ("min-delta-neg", lambda t: dict(early_stopping=EarlyStopping(3, min_delta=-0.1)),
     ValueError, r"Invalid min_delta: -0.1"),
    ("monitor-without-val", lambda t: dict(early_stopping=EarlyStopping(3)), ValueError,
     r"monitors 'val_loss'.*pass val="),
    ("corrupt-checkpoint", _corrupt_checkpoint, CheckpointError, "corrupt or truncated"),
    ("other-model-checkpoint", _other_model_checkpoint, CheckpointError,
     r"different model: .*'0\.weight'"),
    ("resume-without-path", lambda t: dict(resume=True), ValueError, "needs a checkpoint path"),
    ("checkpoint-every-0", lambda t: dict(checkpoint_every=0), ValueError,
     r"Invalid checkpoint_every: 0"),
    ("progress", lambda t: dict(progress="sometimes"), ValueError, r"Invalid progress"),
    ("schedule-per", lambda t: dict(schedule_per="batch"), ValueError, r"Invalid schedule_per"),
    ("schedule-type", lambda t: dict(schedule=0.1), TypeError, r"callable step -> lr"),
    ("schedule-negative-lr", lambda t: dict(schedule=lambda step: -0.1), ValueError,
     r"Invalid learning rate: -0.1"),
    ("scheduler-of-another-optimizer", lambda t: dict(schedule=_foreign_scheduler()),
     ValueError, "attached to another optimizer"),
    ("optimizer-type", lambda t: dict(optimizer="adam"), TypeError, r"torch\.optim\.Optimizer"),
    ("metric-not-callable", lambda t: dict(metrics={"acc": 1}), TypeError, "not callable"),
    ("metric-not-scalar", lambda t: dict(metrics={"acc": lambda o, y: o.mean(0)}), ValueError,
     r"metric 'acc' returned a tensor of shape \(3,\); expected a scalar"),
    ("metric-named-loss", lambda t: dict(metrics={"loss": accuracy}), ValueError,
     "Invalid metric name"),
    ("drop-last-empty", lambda t: dict(batch_size=64, drop_last=True), ValueError,
     r"Invalid batch_size: 64"),
    ("workers-empty-shard", lambda t: dict(train=blobs(33), rank=0, world_size=2, batch_size=8),
     ValueError, "empty batch"),
    ("rank-too-big", lambda t: dict(rank=2, world_size=2), ValueError, r"Invalid rank: 2"),
]


@pytest.mark.parametrize("name, change, error, message", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input(tmp_path, name, change, error, message):
    with pytest.raises(error, match=message):
        args = _args(**change(tmp_path))
        fit(args.pop("model"), args.pop("loss_fn"), args.pop("optimizer"), args.pop("train"),
            **args)  # fmt: skip


def test_save_checkpoint_bad_input(tmp_path):
    model = net(dropout=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="Invalid epoch: -1"):
        save_checkpoint(tmp_path / "a.pt", model=model, optimizer=opt, epoch=-1, history=History())
    with pytest.raises(TypeError, match="expected optimizer"):
        save_checkpoint(tmp_path / "a.pt", model=model, optimizer=None, epoch=1, history=History())
    with pytest.raises(TypeError, match="expected scheduler"):
        save_checkpoint(tmp_path / "a.pt", model=model, optimizer=opt, scheduler=3, epoch=1,
                        history=History())  # fmt: skip
    assert not (tmp_path / "a.pt").exists() and os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# closure-based optimizers (L-BFGS) and schedule-free optimizers (training / evaluation weights)

LBFGS_KINDS = {
    "torch.LBFGS": lambda p: torch.optim.LBFGS(p, lr=0.5, max_iter=4, history_size=5),
    "torch.LBFGS-strong-wolfe": lambda p: torch.optim.LBFGS(p, lr=1, max_iter=4,
                                                             line_search_fn="strong_wolfe"),
    "nnbolts.LBFGS": lambda p: nnbolts.optim.LBFGS(p, lr=0.5, max_iter=4, history_size=5),
}


@pytest.mark.parametrize("name", list(LBFGS_KINDS))
def test_fit_drives_a_closure_optimizer_like_the_hand_written_loop(name):
    """The step gets a closure; the loss recorded is the one step returns (the closure's first
    evaluation), the metrics those of the first evaluation's output."""
    X, y = blobs(64)
    a, b = net(dropout=0), net(dropout=0)
    opt_a, opt_b = LBFGS_KINDS[name](a.parameters()), LBFGS_KINDS[name](b.parameters())
    evaluations = []
    history = fit(a, F.cross_entropy, opt_a, (X, y), epochs=2, batch_size=32,
                  generator=torch.Generator().manual_seed(4),
                  metrics={"acc": accuracy, "evals": lambda o, t: evaluations.append(1) or 0.0})
    gen, losses, accs = torch.Generator().manual_seed(4), [], []
    for _ in range(2):
        for xb, yb in minibatches(X, y, 32, generator=gen):
            outputs = []

            def closure(xb=xb, yb=yb, outputs=outputs):
                opt_b.zero_grad()
                output = b(xb)
                outputs.append(output.detach())
                loss = F.cross_entropy(output, yb)
                loss.backward()
                return loss

            losses.append(opt_b.step(closure).item())
            accs.append(accuracy(outputs[0], yb).item())
            assert len(outputs) > 1  # the line search evaluated the closure again
    assert same_parameters(a, b)
    assert history.step_loss == losses
    assert history.epochs["train_acc"] == pytest.approx(
        [sum(accs[:2]) / 2, sum(accs[2:]) / 2], rel=1e-14)
    assert len(evaluations) == 4  # the metrics once per step, not once per evaluation
    assert history.epochs["train_loss"][-1] < history.epochs["train_loss"][0]


def test_needs_closure_and_has_modes_are_read_from_the_optimizer():
    from nnbolts.optim import has_modes as _has_modes
    from nnbolts.optim import needs_closure as _needs_closure

    p = [nn.Parameter(torch.zeros(2))]
    assert _needs_closure(torch.optim.LBFGS(p)) and _needs_closure(nnbolts.optim.LBFGS(p))
    assert not _needs_closure(torch.optim.SGD(p, lr=0.1))
    assert not _needs_closure(nnbolts.optim.ScheduleFreeAdamW(p))
    assert _has_modes(nnbolts.optim.ScheduleFreeAdamW(p))
    assert not any(_has_modes(o) for o in (torch.optim.Adam(p), torch.optim.LBFGS(p),
                                             nnbolts.optim.Adam(p)))


def _schedule_free_loop(model, opt, X, y, Xv, yv, epochs, batch_size, gen):
    """What fit does with a schedule-free optimizer, by hand."""
    losses, val_losses = [], []
    for _ in range(epochs):
        model.train()
        opt.train()
        for xb, yb in minibatches(X, y, batch_size, generator=gen):
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        opt.eval()
        val_losses.append(evaluate(model, F.cross_entropy, (Xv, yv))["val_loss"])
    return losses, val_losses


@pytest.mark.parametrize("which", ["nnbolts", "schedulefree"])
def test_fit_trains_schedule_free_at_y_and_evaluates_at_x(which):
    schedulefree = pytest.importorskip("schedulefree")
    make = {"nnbolts": nnbolts.optim.ScheduleFreeAdamW,
            "schedulefree": schedulefree.AdamWScheduleFree}[which]
    X, y = blobs(96)
    Xv, yv = blobs(40, seed=9)
    kwargs = dict(lr=0.02, warmup_steps=5, weight_decay=1e-3)
    a, b = net(dropout=0), net(dropout=0)
    opt_a, opt_b = make(a.parameters(), **kwargs), make(b.parameters(), **kwargs)
    history = fit(a, F.cross_entropy, opt_a, (X, y), val=(Xv, yv), epochs=3, batch_size=16,
                  generator=torch.Generator().manual_seed(2))
    losses, val_losses = _schedule_free_loop(b, opt_b, X, y, Xv, yv, 3, 16,
                                             torch.Generator().manual_seed(2))
    assert same_parameters(a, b)  # the evaluation weights x, in both
    assert history.step_loss == losses and history.epochs["val_loss"] == val_losses
    assert not any(g["train_mode"] for g in opt_a.param_groups)  # fit returns in eval mode
    if which == "schedulefree":  # nnbolts' optimizer gives the same numbers as the reference
        c = net(dropout=0)
        opt_c = nnbolts.optim.ScheduleFreeAdamW(c.parameters(), **kwargs)
        again = fit(c, F.cross_entropy, opt_c, (X, y), val=(Xv, yv), epochs=3, batch_size=16,
                    generator=torch.Generator().manual_seed(2))
        assert again == history and same_parameters(c, a)


def test_schedule_free_early_stopping_keeps_the_evaluation_weights():
    X, y = blobs(96)
    Xv, yv = blobs(40, seed=9)
    model = net(dropout=0)
    opt = nnbolts.optim.ScheduleFreeAdamW(model.parameters(), lr=0.5)
    seen = []

    class Spy(EarlyStopping):
        def update(self, value, model=None, *, epoch=None):
            seen.append({k: v.clone() for k, v in model.state_dict().items()})
            assert not opt.param_groups[0]["train_mode"]
            return super().update(value, model, epoch=epoch)

    stopper = Spy(patience=1)
    history = fit(model, F.cross_entropy, opt, (X, y), val=(Xv, yv), epochs=30, batch_size=16,
                  early_stopping=stopper)
    assert history.stopped_epoch is not None, "lr=0.5 must stop improving"
    best = seen[history.best_epoch - 1]
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    assert evaluate(model, F.cross_entropy, (Xv, yv))["val_loss"] == pytest.approx(
        history.epochs["val_loss"][history.best_epoch - 1], rel=1e-12)


def _setup_other(kind, seed=0):
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    model = net(seed=seed, dropout=0.25)
    if kind == "schedule-free":
        opt = nnbolts.optim.ScheduleFreeAdamW(model.parameters(), lr=0.05, warmup_steps=8,
                                              weight_decay=1e-3)
        schedule = None
    elif kind == "schedule-free+step-lr":
        opt = nnbolts.optim.ScheduleFreeAdamW(model.parameters(), lr=0.05)
        schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    else:
        opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=3, history_size=4)
        schedule = None
    return model, opt, schedule, EarlyStopping(patience=50)


@pytest.mark.parametrize("kind", ["schedule-free", "schedule-free+step-lr", "lbfgs"])
@pytest.mark.parametrize("how", ["stop-after-3", "killed-in-epoch-4"])
def test_resumed_run_with_these_optimizers_is_bit_identical(tmp_path, kind, how):
    X, y = blobs(100)
    Xv, yv = blobs(40, seed=9)
    common = dict(val=(Xv, yv), epochs=6, batch_size=16, metrics={"acc": accuracy})

    model, opt, schedule, stopper = _setup_other(kind)
    straight = fit(model, F.cross_entropy, opt, (X, y), schedule=schedule,
                   early_stopping=stopper, generator=torch.Generator().manual_seed(1), **common)
    final_best = {k: v.clone() for k, v in stopper.best_state.items()}
    rng_after_straight = torch.get_rng_state()

    calls = 3 * num_batches(100, 16)  # loss evaluations in 3 epochs
    if kind == "lbfgs" and how != "stop-after-3":  # several per step: count them
        counter = CrashAfter(10**9)
        m, o, s, e = _setup_other(kind)
        fit(m, counter, o, (X, y), schedule=s, early_stopping=e,
            generator=torch.Generator().manual_seed(1), **{**common, "epochs": 3})
        calls = 10**9 - counter.n

    path = tmp_path / "run.pt"
    model2, opt2, schedule2, stopper2 = _setup_other(kind)
    if how == "stop-after-3":
        fit(model2, F.cross_entropy, opt2, (X, y), schedule=schedule2, early_stopping=stopper2,
            checkpoint=path, generator=torch.Generator().manual_seed(1),
            **{**common, "epochs": 3})
    else:
        with pytest.raises(KeyboardInterrupt):
            fit(model2, CrashAfter(calls + 2), opt2, (X, y), schedule=schedule2,
                early_stopping=stopper2, checkpoint=path, checkpoint_every=2,
                generator=torch.Generator().manual_seed(1), **common)
        assert load_checkpoint(path, model=net(dropout=0.25), optimizer=None)["epoch"] == 2

    model3, opt3, schedule3, stopper3 = _setup_other(kind, seed=77)
    resumed = fit(model3, F.cross_entropy, opt3, (X, y), schedule=schedule3,
                  early_stopping=stopper3, checkpoint=path, resume=True,
                  generator=torch.Generator().manual_seed(5), **common)
    assert resumed == straight
    assert same_parameters(model3, model)
    assert same_state(opt3.state_dict(), opt.state_dict())
    assert same_state(stopper3.best_state, final_best)
    assert torch.equal(torch.get_rng_state(), rng_after_straight)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_schedule_free_checkpoint_in_either_mode_continues_exactly(tmp_path, mode):
    """Saved by hand in training mode (the model holds y) or in eval mode (x): the mode travels
    in the optimizer's state dict, so the loaded pair continues exactly as the original."""
    X, y = blobs(64)

    def steps(model, opt, ks):
        for k in ks:
            opt.zero_grad()
            F.cross_entropy(model(X[k::4]), y[k::4]).backward()
            opt.step()

    model = net(dropout=0)
    opt = nnbolts.optim.ScheduleFreeAdamW(model.parameters(), lr=0.05)
    opt.train()
    steps(model, opt, range(4))
    getattr(opt, mode)()
    path = save_checkpoint(tmp_path / "m.pt", model=model, optimizer=opt, epoch=1,
                           history=History())
    model2 = net(seed=3, dropout=0)
    opt2 = nnbolts.optim.ScheduleFreeAdamW(model2.parameters(), lr=0.05)
    load_checkpoint(path, model=model2, optimizer=opt2)
    assert same_parameters(model2, model)
    for m, o in ((model, opt), (model2, opt2)):
        o.train()
        steps(m, o, range(4, 8))
        o.eval()
    assert same_parameters(model2, model)
    assert same_state(opt2.state_dict(), opt.state_dict())
