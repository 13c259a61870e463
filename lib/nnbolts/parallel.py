"""Data parallelism simulated in one process: sharding a global batch, combining shard
gradients, gradient accumulation and the ring all-reduce.

Every function here runs in a single process; the ``k`` workers of a data-parallel run are the
entries of a list. The functions compute what ``k`` processes joined by ``torch.distributed``
compute together, so that the algebra of the book's chapter can be checked without sockets:

* :func:`shard`: the rows of a global batch that worker ``rank`` of ``world_size`` gets, the
  sharding of :func:`nnbolts.data.minibatches` with ``rank`` and ``world_size``;
* :func:`sharded_gradient`: each shard's mean-loss gradient, weighted by the shard's share of the
  rows, summed: the gradient of the global batch's mean loss, however unequal the shards;
* :func:`accumulated_gradient`: the same gradient from consecutive micro-batches, each loss
  scaled by its share of the rows before ``backward`` adds it to ``.grad``;
* :func:`ring_all_reduce`: the elementwise **sum** of ``k`` equal-shape tensors, left on every
  worker, computed as ``k`` workers in a ring do (``k - 1`` reduce-scatter steps, then ``k - 1``
  all-gather steps, one chunk per worker per step), every message passed through a ``send``
  callback that a caller can record. ``torch.distributed.all_reduce(t)`` (``op=SUM``) computes
  the same sum; NCCL and gloo use rings among other algorithms.

Notation as in the book: ``k`` workers, shard ``r`` of ``b_r`` rows, ``n = sum_r b_r`` rows in
the global batch, ``P`` numbers in a gradient.

Explained in: book/scaling.md
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import torch

from nnbolts._checks import check_tensor

__all__ = [
    "accumulated_gradient",
    "ring_all_reduce",
    "shard",
    "sharded_gradient",
]


def _check_count(name: str, value, low: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"Invalid {name}: {value} (must be at least {low})")
    return int(value)


def _check_batch(X, y) -> int:
    check_tensor("X", X)
    check_tensor("y", y)
    if X.dim() == 0 or y.dim() == 0:
        raise ValueError("X and y must have a first dimension of rows (got a 0-d tensor)")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    if X.shape[0] == 0:
        raise ValueError("X and y have no rows: an empty global batch has no gradient")
    return X.shape[0]


def _check_workers(rank, world_size) -> tuple[int, int]:
    world_size = _check_count("world_size", world_size)
    rank = _check_count("rank", rank, low=0)
    if rank >= world_size:
        raise ValueError(f"Invalid rank: {rank} (must be in [0, world_size) = [0, {world_size}))")
    return rank, world_size


def _check_training(model, loss_fn) -> list[torch.Tensor]:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    params = list(model.parameters())
    if not params or not all(p.requires_grad for p in params):
        raise ValueError("model must have parameters, all with requires_grad=True")
    return params


def shard(X: torch.Tensor, y: torch.Tensor, rank: int, world_size: int):
    """The rows ``(X_r, y_r)`` of the global batch ``(X, y)`` that worker ``rank`` gets.

    The ``n`` rows are cut into ``world_size`` consecutive blocks whose sizes differ by at most
    one, the first ``n mod world_size`` blocks one row longer (``torch.tensor_split``); worker
    ``rank`` gets block ``rank``. For a full global batch of ``k * b`` rows that is rows
    ``[rank * b, (rank + 1) * b)``, and for the last, partial batch of an epoch the uneven split:
    exactly what :func:`nnbolts.data.minibatches` yields to ``rank`` with ``world_size`` workers
    (drawn with the same generator, batch by batch). When ``n < world_size`` some workers get
    no rows. The blocks are views of ``X`` and ``y`` (no copy).

    Torch equivalent: none; ``torch.utils.data.distributed.DistributedSampler`` pads the epoch
    and strides (``rank::world_size``) instead.

    Explained in: book/scaling.md ("Who gets which rows: sharding an epoch")

    Example:
        >>> X, y = torch.arange(5.0).unsqueeze(1), torch.arange(5)
        >>> [shard(X, y, r, 2)[1].tolist() for r in range(2)]
        [[0, 1, 2], [3, 4]]
    """
    _check_batch(X, y)
    rank, world_size = _check_workers(rank, world_size)
    return X.tensor_split(world_size)[rank], y.tensor_split(world_size)[rank]


def sharded_gradient(model: torch.nn.Module, loss_fn: Callable, X: torch.Tensor,
                     y: torch.Tensor, world_size: int) -> list[torch.Tensor]:
    r"""The gradient of the global batch's mean loss, computed as ``world_size`` workers do.

    Worker ``r`` takes its :func:`shard` of ``b_r`` rows and computes ``g_r``, the gradient of
    ``loss_fn(model(X_r), y_r)`` (a **mean**-reduced loss, such as ``F.cross_entropy``) with
    respect to ``model.parameters()``. The shards' gradients are combined with weights equal to
    their share of the rows,

    ``g = sum_r (b_r / n) g_r``,

    which is the gradient of the mean loss over all ``n`` rows whatever the shard sizes (the
    plain average ``(1/k) sum_r g_r`` equals it only for equal shards). A worker with no rows
    (``n < world_size``) contributes nothing. Returns a list of tensors, one per parameter in
    ``model.parameters()`` order; the parameters' ``.grad`` are left untouched
    (``torch.autograd.grad``).

    Torch equivalent: ``DistributedDataParallel`` averages the workers' gradients, the plain
    average, exact for equal shards; a loss scaled by ``k * b_r / n`` on each worker gives the
    weighted sum.

    Explained in: book/scaling.md ("The algebra", "Unequal shards")
    """
    params = _check_training(model, loss_fn)
    n = _check_batch(X, y)
    world_size = _check_count("world_size", world_size)
    total = [torch.zeros_like(p) for p in params]
    for rank in range(world_size):
        X_r, y_r = shard(X, y, rank, world_size)
        if X_r.shape[0] == 0:
            continue
        grads = torch.autograd.grad(loss_fn(model(X_r), y_r), params)
        for t, g in zip(total, grads):
            t.add_(g, alpha=X_r.shape[0] / n)
    return total


def accumulated_gradient(model: torch.nn.Module, loss_fn: Callable, X: torch.Tensor,
                         y: torch.Tensor, micro_batch: int) -> list[torch.Tensor]:
    r"""The gradient of the batch's mean loss, accumulated over micro-batches.

    The ``n`` rows are cut into consecutive micro-batches of ``micro_batch`` rows (the last one
    shorter when ``micro_batch`` does not divide ``n``). For each, ``loss_fn`` (mean-reduced) is
    scaled by the micro-batch's share of the rows, ``m_j / n``, and ``backward()`` adds its
    gradient to the parameters' ``.grad``:

    ``g = sum_j (m_j / n) grad L_j``,

    the gradient of the mean over all ``n`` rows. Dividing every loss by the number of
    micro-batches instead is right only when they are all of equal size; not scaling at all
    gives a gradient as many times too large as there are micro-batches.

    The parameters' ``.grad`` are zeroed (set to ``None``) first and hold the accumulated
    gradient afterwards, as after the micro-batches of a training step; the return value is a
    list of copies, one per parameter in ``model.parameters()`` order.

    Torch equivalent: the usual accumulation loop, ``(loss * m_j / n).backward()`` per
    micro-batch, then ``optimizer.step()`` (with ``DistributedDataParallel``, all but the last
    micro-batch inside ``model.no_sync()``).

    Explained in: book/scaling.md ("What changes on GPUs": gradient accumulation)
    """
    params = _check_training(model, loss_fn)
    n = _check_batch(X, y)
    micro_batch = _check_count("micro_batch", micro_batch)
    model.zero_grad(set_to_none=True)
    for start in range(0, n, micro_batch):
        X_j, y_j = X[start:start + micro_batch], y[start:start + micro_batch]
        (loss_fn(model(X_j), y_j) * (X_j.shape[0] / n)).backward()
    return [p.grad.clone() for p in params]


def _copy(src: int, dst: int, chunk: torch.Tensor) -> torch.Tensor:
    return chunk.clone()


def ring_all_reduce(tensors: Sequence[torch.Tensor],
                    send: Callable[[int, int, torch.Tensor], torch.Tensor] | None = None,
                    ) -> list[torch.Tensor]:
    r"""The elementwise sum of ``k`` equal-shape tensors, one per worker, left on every worker,
    computed by the ring algorithm.

    Worker ``r`` holds ``tensors[r]``; the workers form a ring in which ``r`` sends only to its
    right neighbour ``(r + 1) mod k``. Each worker flattens its tensor and cuts it into ``k``
    chunks with ``tensor_split(k)`` (sizes differ by at most one; the first are longer).

    * **reduce-scatter**, steps ``s = 0, ..., k - 2``: worker ``r`` sends its partial sum of
      chunk ``(r - s) mod k``; the receiver adds it to its own copy of that chunk. Afterwards
      worker ``r`` holds chunk ``(r + 1) mod k`` of the sum, with all ``k`` contributions;
    * **all-gather**, steps ``s = 0, ..., k - 2``: worker ``r`` sends chunk ``(r + 1 - s) mod k``,
      which it holds complete; the receiver stores it.

    Every message goes through ``send(src, dst, chunk)``, which delivers ``chunk`` to worker
    ``dst`` and returns what ``dst`` receives (the default returns a copy); all messages of a step
    are sent before any of the next step, so each worker sends ``2 (k - 1)`` chunks,
    ``2 (k - 1) / k * P`` numbers for tensors of ``P`` elements. The inputs are not modified; the
    result is a list of ``k`` new tensors of the inputs' shape (for ``k = 1``, a copy, and no
    message).

    Torch equivalent: ``torch.distributed.all_reduce(t)`` (``op=ReduceOp.SUM``) on each of ``k``
    processes; divide by ``k`` for the average that ``DistributedDataParallel`` applies.

    Explained in: book/scaling.md ("The all-reduce"); P. Patarasuk and X. Yuan, "Bandwidth
    optimal all-reduce algorithms for clusters of workstations", 2009.

    Example:
        >>> workers = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])]
        >>> [t.tolist() for t in ring_all_reduce(workers)]
        [[4.0, 6.0], [4.0, 6.0]]
    """
    if isinstance(tensors, torch.Tensor) or not isinstance(tensors, Sequence) or not tensors:
        raise TypeError("tensors must be a non-empty list of tensors, one per worker, got "
                        f"{type(tensors).__name__}")
    first = check_tensor("tensors[0]", tensors[0])
    for r, t in enumerate(tensors):
        check_tensor(f"tensors[{r}]", t)
        if t.shape != first.shape or t.dtype != first.dtype or t.device != first.device:
            raise ValueError(f"tensors[{r}] has shape {tuple(t.shape)}, {t.dtype} on {t.device}, "
                             f"but tensors[0] has shape {tuple(first.shape)}, {first.dtype} on "
                             f"{first.device}: every worker holds a tensor of the same kind")
    if send is None:
        send = _copy
    elif not callable(send):
        raise TypeError(f"send must be callable, got {type(send).__name__}")
    k = len(tensors)
    chunks = [list(t.detach().reshape(-1).clone().tensor_split(k)) for t in tensors]
    for s in range(k - 1):  # reduce-scatter
        received = [send(r, (r + 1) % k, chunks[r][(r - s) % k]) for r in range(k)]
        for r, payload in enumerate(received):
            chunks[(r + 1) % k][(r - s) % k] = chunks[(r + 1) % k][(r - s) % k] + payload
    for s in range(k - 1):  # all-gather
        received = [send(r, (r + 1) % k, chunks[r][(r + 1 - s) % k]) for r in range(k)]
        for r, payload in enumerate(received):
            chunks[(r + 1) % k][(r + 1 - s) % k] = payload.clone()
    return [torch.cat(c).reshape(first.shape) for c in chunks]
