"""``fit``: the minibatch training loop of the course, with validation, early stopping,
schedules, exact-resume checkpoints and data-parallel workers; it drives closure-based
optimizers (L-BFGS) and schedule-free ones (separate training and evaluation weights) too.

Explained in: book/minibatch.md, book/optimizers.md
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from .._checks import check_choice, check_int, check_number, check_tensor
from ..data import minibatches, num_batches
from ..optim._base import has_modes, needs_closure
from .checkpoint import load_checkpoint, save_checkpoint
from .early_stopping import EarlyStopping, _unwrap
from .history import History
from .progress import ProgressBar, progress_enabled

# ---------------------------------------------------------------------------------------------
# argument checks


def _model_device(model: nn.Module) -> torch.device | None:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return None


def _check_pair(name: str, pair, device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(
            f"expected {name} to be a pair (X, y) of tensors, got {type(pair).__name__}"
        )
    X, y = pair
    check_tensor(f"{name} X", X)
    check_tensor(f"{name} y", y)
    if X.dim() == 0 or y.dim() == 0:
        raise ValueError(f"{name} X and y must hold one sample per row along dim 0")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{name} X has {X.shape[0]} samples but {name} y has {y.shape[0]}")
    if X.shape[0] == 0:
        raise ValueError(f"empty dataset: {name} X and y have 0 samples")
    for part, tensor in (("X", X), ("y", y)):
        if device is not None and tensor.device != device:
            raise ValueError(
                f"the model is on {device} but {name} {part} is on {tensor.device}: move both to "
                f"the same device (model.to(device), X.to(device))"
            )
    return X, y


def _check_metrics(metrics) -> dict[str, Callable]:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TypeError(f"expected metrics to be a dict name -> fn, got {type(metrics).__name__}")
    for name, fn in metrics.items():
        if not isinstance(name, str) or not name or name == "loss":
            raise ValueError(f"Invalid metric name: {name!r} (a non-empty str other than 'loss')")
        if not callable(fn):
            raise TypeError(f"metric {name!r} is not callable: {fn!r}")
    return dict(metrics)


def _scalar(name: str, value, like: torch.Tensor) -> torch.Tensor:
    """A metric's value as a detached 0-d tensor on the device (no synchronisation)."""
    if not isinstance(value, torch.Tensor):
        return torch.tensor(float(value), device=like.device)
    if value.numel() != 1:
        raise ValueError(
            f"metric {name!r} returned a tensor of shape {tuple(value.shape)}; expected a scalar"
        )
    return value.detach().reshape(())


def _workers(rank, world_size) -> tuple[int, int, bool]:
    """(rank, world_size, whether results must be averaged over a process group)."""
    initialized = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if initialized else 0
    if world_size is None:
        world_size = dist.get_world_size() if initialized else 1
    world_size = check_int("world_size", world_size, low=1)
    rank = check_int("rank", rank, low=0)
    if rank >= world_size:
        raise ValueError(f"Invalid rank: {rank} (must be in [0, {world_size}))")
    return rank, world_size, initialized and world_size > 1


def _default_generator(device: torch.device, distributed: bool) -> torch.Generator:
    # Derived from torch's global seed, so `torch.manual_seed(s)` fixes the data order as well,
    # but mixed, so the permutations do not reuse the very numbers that initialised the weights.
    seed = (torch.initial_seed() * 6364136223846793005 + 1442695040888963407) % 2**63
    if distributed:  # every worker must draw the same permutation: take rank 0's seed
        shared = torch.tensor([seed], dtype=torch.int64, device=device)
        dist.broadcast(shared, src=0)
        seed = int(shared.item())
    return torch.Generator().manual_seed(seed)


def _set_lr(optimizer: torch.optim.Optimizer, lr) -> None:
    check_number("learning rate", lr, low=0.0)
    for group in optimizer.param_groups:
        group["lr"] = lr


def _closure_step(model, loss_fn, optimizer, xb, yb):
    """One step of a closure-based optimizer; returns the step's loss and the model's output,
    both from the closure's first evaluation (the point the step starts from).

    The optimizer may evaluate the closure several times (L-BFGS's line search); each
    evaluation recomputes the loss and its gradient from scratch. The loss recorded is the one
    ``step`` returns (torch's convention: the first evaluation's), else the first evaluation's.
    """
    first: list = []

    def closure():
        optimizer.zero_grad()
        output = model(xb)
        loss = loss_fn(output, yb)
        loss.backward()
        if not first:
            first.append((loss, output))
        return loss

    returned = optimizer.step(closure)
    if not first:
        raise RuntimeError(f"{type(optimizer).__name__}.step(closure) never called the closure")
    loss, output = first[0]
    if isinstance(returned, torch.Tensor):
        loss = returned
    elif returned is not None:
        loss = torch.tensor(float(returned), dtype=loss.dtype, device=loss.device)
    return loss, output


# ---------------------------------------------------------------------------------------------
# epoch summaries


def _weighted_mean(values: list[float], sizes: list[float]) -> float:
    total = math.fsum(sizes)
    return math.fsum(v * n for v, n in zip(values, sizes, strict=True)) / total


def _summarise_epoch(
    losses: list[torch.Tensor],
    sizes: list[int],
    metric_values: dict[str, list[torch.Tensor]],
    distributed: bool,
) -> tuple[list[float], dict[str, float]]:
    """Per-step losses (averaged over workers) and the epoch's means, with one sync per epoch."""
    names = list(metric_values)
    if not distributed:
        columns = [torch.stack(losses)] + [torch.stack(metric_values[m]) for m in names]
        rows = torch.stack(columns, dim=1).tolist()  # the epoch's one synchronisation
        step_losses = [row[0] for row in rows]
        weights = [float(n) for n in sizes]
    else:
        # Each worker's loss is the mean over its own shard: weight by shard size, sum over the
        # workers in one all_reduce, divide by the global batch size. Every rank gets the same
        # numbers, so every rank's History is the same.
        device = losses[0].device
        n = torch.tensor(sizes, dtype=torch.float64, device=device)
        columns = [torch.stack(losses)] + [torch.stack(metric_values[m]) for m in names]
        weighted = [torch.where(n > 0, c.to(torch.float64) * n, 0.0) for c in columns]
        table = torch.stack([n, *weighted], dim=1)
        dist.all_reduce(table, op=dist.ReduceOp.SUM)
        totals = table.tolist()
        weights = [row[0] for row in totals]
        rows = [[value / row[0] for value in row[1:]] for row in totals]
        step_losses = [row[0] for row in rows]
    summary = {"train_loss": _weighted_mean(step_losses, weights)}
    for column, name in enumerate(names, start=1):
        summary[f"train_{name}"] = _weighted_mean([row[column] for row in rows], weights)
    return step_losses, summary


def evaluate(
    model: nn.Module,
    loss_fn: Callable,
    data,
    *,
    metrics: dict[str, Callable] | None = None,
    batch_size: int | None = 1024,
    prefix: str = "val",
) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``data = (X, y)``, in eval mode and without gradients.

    Evaluated in chunks of ``batch_size`` rows (``None``: all at once) and averaged with weights
    equal to the chunk sizes, which gives the loss of the whole set for a mean-reduced
    ``loss_fn``. Returns ``{"val_loss": ..., "val_<metric>": ...}`` (``prefix`` names the set).
    The model's training mode is restored afterwards.

    Explained in: book/minibatch.md
    """
    metrics = _check_metrics(metrics)
    net = _unwrap(model)  # a DDP wrapper's forward would start collectives: evaluate locally
    X, y = _check_pair(prefix, data, _model_device(net))
    if batch_size is not None:
        check_int("eval_batch_size", batch_size, low=1)
    chunk = X.shape[0] if batch_size is None else batch_size
    was_training = net.training
    net.eval()
    sums: list[list[torch.Tensor]] = []
    sizes: list[float] = []
    try:
        with torch.no_grad():
            for start in range(0, X.shape[0], chunk):
                xb, yb = X[start : start + chunk], y[start : start + chunk]
                output = net(xb)
                loss = loss_fn(output, yb).detach()
                row = [loss] + [_scalar(m, fn(output, yb), loss) for m, fn in metrics.items()]
                sums.append(torch.stack(row))
                sizes.append(float(xb.shape[0]))
    finally:
        net.train(was_training)
    table = torch.stack(sums).tolist()
    names = ["loss", *metrics]
    return {
        f"{prefix}_{name}": _weighted_mean([row[i] for row in table], sizes)
        for i, name in enumerate(names)
    }


# ---------------------------------------------------------------------------------------------
# the loop


def fit(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    epochs: int,
    batch_size: int | None,
    schedule=None,
    schedule_per: str = "step",
    early_stopping: EarlyStopping | None = None,
    checkpoint=None,
    checkpoint_every: int = 1,
    resume: bool = False,
    generator: torch.Generator | None = None,
    metrics: dict[str, Callable] | None = None,
    progress: bool | str = True,
    shuffle: bool = True,
    drop_last: bool = False,
    eval_batch_size: int | None = 1024,
    rank: int | None = None,
    world_size: int | None = None,
) -> History:
    r"""Train ``model`` by minibatch gradient descent for ``epochs`` epochs; return its History.

    Each epoch walks a fresh permutation of ``train = (X, y)`` in batches of ``batch_size``
    (``None``: full batch, ``1``: online) with :func:`nnbolts.data.minibatches`, and for each batch
    ``B`` does one step of

    .. math::  \theta \leftarrow \text{optimizer}\big(\theta,\ \nabla_\theta
               \tfrac{1}{|B|}\textstyle\sum_{i\in B} \ell(f_\theta(x_i), y_i)\big)

    i.e. ``zero_grad(); loss_fn(model(xb), yb).backward(); optimizer.step()`` — any
    ``torch.optim.Optimizer`` works, nnbolts' or torch's. Two kinds of optimizer get more:

    * one whose ``step`` requires a closure (its ``closure`` argument has no default:
      ``torch.optim.LBFGS``, :class:`nnbolts.optim.LBFGS`) is called as ``step(closure)`` with a
      closure that does ``zero_grad()``, the forward pass and ``backward()`` on the batch and
      returns the loss. It may be evaluated several times per step (a line search); the loss
      and metrics recorded for the step are those of the point the step started from: the
      loss ``step`` returns (the first evaluation's, in torch's convention) and the output of
      the first evaluation. With data-parallel workers every rank must evaluate it equally often.
    * one with ``train()`` and ``eval()`` methods keeps separate training and evaluation weights
      (schedule-free optimizers: :class:`nnbolts.optim.ScheduleFreeAdamW`, the ``schedulefree``
      package's). ``fit`` calls ``optimizer.train()`` with ``model.train()`` at the start of
      every epoch and ``optimizer.eval()`` after its last step, so that validation, early
      stopping's best weights and checkpoints see the evaluation weights; training resumes from
      them at the next epoch, in a resumed run exactly as in the uninterrupted one. ``fit``
      returns with the optimizer in eval mode and the model holding its evaluation weights: call
      ``optimizer.train()`` before stepping by hand.

    ``loss_fn(output, y)`` must return the
    *mean* over the batch (torch's default reduction): epoch losses are batch-size-weighted means
    of it. After each epoch the model is evaluated on ``val`` (eval mode, no gradients, in chunks of
    ``eval_batch_size``), the epoch's values are appended to ``history.epochs``, and early stopping
    and the checkpoint are updated.

    Arguments
    ---------
    schedule
        ``None`` (keep the optimizer's lr); a *schedule*, a callable ``step -> lr`` such as those of
        :mod:`nnbolts.schedules`, which sets every parameter group's lr before each step (``step``
        counts completed optimizer updates, so the first update uses ``schedule(0)``); or a torch
        ``LRScheduler`` already attached to ``optimizer``, stepped after every optimizer step.
        ``schedule_per="epoch"`` applies either per epoch instead (the callable then receives the
        number of completed epochs). A ``ReduceLROnPlateau`` is always stepped per epoch with
        ``val_loss`` (``train_loss`` without ``val``).
    early_stopping
        an :class:`EarlyStopping`; reset at the start of a fresh run, restored from the checkpoint
        on resume; its best weights are loaded back at the end when ``restore_best``.
    checkpoint, checkpoint_every, resume
        a path: every ``checkpoint_every`` epochs, at the last epoch and when early stopping fires,
        :func:`save_checkpoint` writes it atomically. With ``resume=True`` an existing checkpoint is
        loaded (model, optimizer, scheduler, early stopping, history, every RNG) and training
        continues from its epoch up to ``epochs`` (a total, not a number of extra epochs); a missing
        file simply starts a fresh run, so a preemptible job can always pass ``resume=True``. On
        CPU the resumed run is bit-identical to the uninterrupted one.
    generator
        the ``torch.Generator`` that orders the data (advanced in place, saved in checkpoints).
        Default: a fresh CPU generator seeded from ``torch.initial_seed()`` (mixed by a fixed
        affine map), so ``torch.manual_seed(s)`` fixes the data order too, and the order never
        depends on how many random numbers the model drew.
    metrics
        ``{name: fn(output, y) -> 0-d tensor}`` such as :func:`accuracy`, recorded as
        ``train_<name>`` (on the training batches as they were trained on, batch-weighted) and
        ``val_<name>``.
    progress
        ``True``: a one-line bar on stderr when it is a terminal and ``CI`` is unset;
        ``"always"``: always; ``False``: never.
    rank, world_size
        data-parallel workers. By default taken from ``torch.distributed`` when a process group is
        initialised: wrap the model in ``DistributedDataParallel`` and call ``fit`` unchanged on
        every worker; ``batch_size`` is then the batch of one worker, each worker trains on its own
        shard of every global batch of ``world_size * batch_size`` rows, and losses and metrics
        are averaged over the workers (one ``all_reduce`` per epoch), so every rank returns the
        same History. With ``N`` divisible by ``world_size * batch_size`` (or ``drop_last=True``)
        this equals one process with batch ``world_size * batch_size``. Only rank 0 writes the
        checkpoint (every rank waits for it at the end of ``fit``); it holds rank 0's RNG
        states, which every rank restores on resume: the data order resumes exactly on every
        rank, per-rank randomness such as dropout resumes from rank 0's stream.

    Cost: per step, fit adds to the bare loop only a detached copy of the loss kept on the device
    and a Python read of the lr; losses become floats once per epoch (no per-step device sync).

    Example::

        history = fit(model, F.cross_entropy, torch.optim.Adam(model.parameters(), 1e-3),
                      (X, y), val=(Xv, yv), epochs=50, batch_size=32,
                      early_stopping=EarlyStopping(patience=5), metrics={"acc": accuracy})

    Explained in: book/minibatch.md (the loop, validation, early stopping, checkpoints),
    book/optimizers.md (closure-based L-BFGS, schedule-free training and evaluation weights).
    """
    # --- arguments --------------------------------------------------------------------------
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"expected loss_fn to be callable, got {type(loss_fn).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"expected optimizer to be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    epochs = check_int("epochs", epochs, low=1)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1)
    if eval_batch_size is not None:
        eval_batch_size = check_int("eval_batch_size", eval_batch_size, low=1)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, low=1)
    schedule_per = check_choice("schedule_per", schedule_per, {"step", "epoch"})
    if progress not in (True, False, "always"):
        raise ValueError(f"Invalid progress: {progress!r}; expected True, False or 'always'")
    for name, flag in (("resume", resume), ("shuffle", shuffle), ("drop_last", drop_last)):
        if not isinstance(flag, bool):
            raise TypeError(f"expected {name} to be a bool, got {type(flag).__name__}: {flag!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path to resume from")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"expected generator to be a torch.Generator, got {type(generator)}")
    metrics = _check_metrics(metrics)
    device = _model_device(model)
    X, y = _check_pair("train", train, device)
    if val is not None:
        val = _check_pair("val", val, device)

    torch_scheduler = isinstance(schedule, (LRScheduler, ReduceLROnPlateau))
    if torch_scheduler and schedule.optimizer is not optimizer:
        raise ValueError("the torch scheduler given as schedule is attached to another optimizer")
    if schedule is not None and not torch_scheduler and not callable(schedule):
        raise TypeError(
            "expected schedule to be a callable step -> lr or a torch LRScheduler, "
            f"got {type(schedule).__name__}"
        )
    plateau = isinstance(schedule, ReduceLROnPlateau)
    plateau_key = watched = "val_loss" if val is not None else "train_loss"
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError(
                f"expected early_stopping to be an EarlyStopping, got {type(early_stopping)}"
            )
        available = ["train_loss"] + [f"train_{m}" for m in metrics]
        if val is not None:
            available += ["val_loss"] + [f"val_{m}" for m in metrics]
        if early_stopping.monitor not in available:
            raise ValueError(
                f"early stopping monitors {early_stopping.monitor!r}, which this run does not "
                f"record (available: {available}"
                + ("; pass val=(X_val, y_val)" if val is None else "")
                + ")"
            )
        watched = early_stopping.monitor

    rank, world_size, distributed = _workers(rank, world_size)
    n_steps = num_batches(X.shape[0], batch_size, drop_last, world_size)
    if world_size > 1 and batch_size is not None and not drop_last:
        tail = X.shape[0] % (batch_size * world_size)
        if 0 < tail < world_size:
            raise ValueError(
                f"with {X.shape[0]} samples, world_size={world_size} and batch_size={batch_size} "
                f"the last global batch has {tail} rows, fewer than the workers: some would get "
                "an empty batch. Pass drop_last=True or change batch_size."
            )
    if n_steps == 0:
        raise ValueError(
            f"Invalid batch_size: {batch_size} gives no batch per epoch for {X.shape[0]} samples"
        )
    if generator is None:
        generator = _default_generator(X.device, distributed)
    uses_closure, modes = needs_closure(optimizer), has_modes(optimizer)

    # --- start or resume ---------------------------------------------------------------------
    history = History()
    start_epoch = 0
    if early_stopping is not None:
        early_stopping.reset()
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if resume and checkpoint.exists():
        info = load_checkpoint(
            checkpoint,
            model=model,
            optimizer=optimizer,
            scheduler=schedule,
            early_stopping=early_stopping,
            generator=generator,
        )
        history, start_epoch = info["history"], info["epoch"]

    step = history.steps
    bar = ProgressBar(progress_enabled(progress) and rank == 0, epochs, n_steps)
    try:
        for epoch in range(start_epoch, epochs):
            if history.stopped_epoch is not None:
                break
            bar.start_epoch(epoch + 1)
            model.train()
            if modes:
                optimizer.train()  # schedule-free: the parameters move to the training point
            if schedule is not None and not torch_scheduler and schedule_per == "epoch":
                _set_lr(optimizer, schedule(epoch))
            losses: list[torch.Tensor] = []
            sizes: list[int] = []
            lrs: list = []
            metric_values: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}
            batches = minibatches(
                X, y, batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator,
                rank=rank, world_size=world_size,
            )  # fmt: skip
            for xb, yb in batches:
                if schedule is not None and not torch_scheduler and schedule_per == "step":
                    _set_lr(optimizer, schedule(step))
                lr = optimizer.param_groups[0]["lr"]
                # a tensor lr is updated in place by its scheduler: keep this step's value
                lrs.append(lr.detach().clone() if isinstance(lr, torch.Tensor) else lr)
                if uses_closure:
                    loss, output = _closure_step(model, loss_fn, optimizer, xb, yb)
                else:
                    optimizer.zero_grad()
                    output = model(xb)
                    loss = loss_fn(output, yb)
                    loss.backward()
                    optimizer.step()
                if torch_scheduler and not plateau and schedule_per == "step":
                    schedule.step()
                losses.append(loss.detach())
                sizes.append(xb.shape[0])
                if metrics:
                    with torch.no_grad():
                        for name, fn in metrics.items():
                            value = _scalar(name, fn(output.detach(), yb), loss)
                            metric_values[name].append(value)
                step += 1
                bar.step()

            # --- end of epoch: one synchronisation, validation, bookkeeping ----------------
            if modes:
                # schedule-free: evaluate, keep as best and checkpoint the averaged weights
                optimizer.eval()
            step_losses, values = _summarise_epoch(losses, sizes, metric_values, distributed)
            history.extend_steps(step_losses, lrs)
            if val is not None:
                values.update(
                    evaluate(model, loss_fn, val, metrics=metrics, batch_size=eval_batch_size)
                )
            history.log_epoch(values)
            if plateau:
                schedule.step(values[plateau_key])
            elif torch_scheduler and schedule_per == "epoch":
                schedule.step()
            stop = False
            if early_stopping is not None:
                stop = early_stopping.update(values[watched], model, epoch=epoch + 1)
                history.best_epoch = early_stopping.best_epoch
                if stop:
                    history.stopped_epoch = epoch + 1
            bar.end_epoch(values)
            due = stop or epoch + 1 == epochs or (epoch + 1) % checkpoint_every == 0
            if checkpoint is not None and rank == 0 and due:
                save_checkpoint(
                    checkpoint,
                    model=model,
                    optimizer=optimizer,
                    scheduler=schedule,
                    epoch=epoch + 1,
                    history=history,
                    early_stopping=early_stopping,
                    generator=generator,
                )
            if stop:
                break
    finally:
        bar.close()
    if distributed and checkpoint is not None:
        dist.barrier()  # rank 0's last checkpoint is on disk before any rank can resume from it
    if early_stopping is not None:
        early_stopping.restore(model)
    return history
