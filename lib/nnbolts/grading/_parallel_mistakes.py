"""Known mistakes of data parallelism simulated in one process (``nnbolts.parallel``), each with
its hint, and the transcript of a ring all-reduce that the trusted checks compare.

Registered by ``_mistakes._build`` for :func:`nnbolts.parallel.shard`,
:func:`~nnbolts.parallel.sharded_gradient` and :func:`~nnbolts.parallel.accumulated_gradient`
(signature of the reference). A ring all-reduce is judged on its **transcript**
(:func:`ring_transcript`): the sums every worker ends with, how many chunks each worker sent,
and every message of every step, so that a sum computed directly and copied to every worker
does not pass as a ring; :func:`ring_mistakes` are wrong rings, as transcripts.
"""

from __future__ import annotations

import torch

from ._mistakes import Mistake

# ---------------------------------------------------------------------------------------------
# the transcript of a ring
# ---------------------------------------------------------------------------------------------


def transcript(k: int, results, sends) -> dict:
    """What a ring did, in a form that does not depend on the order of the messages inside one
    step: ``results`` (the k tensors), ``sends_per_worker`` (how many chunks each worker sent)
    and ``steps``, the messages cut into steps of ``k`` in the order they were sent, each step's
    ``(src, dst, chunk)`` sorted by sender."""
    counts = [0] * k
    for src, _, _ in sends:
        if 0 <= src < k:
            counts[src] += 1
    steps = []
    for start in range(0, len(sends), k):
        steps.append(sorted(sends[start:start + k], key=lambda message: message[0]))
    return {"results": list(results), "sends_per_worker": counts, "steps": steps}


def ring_transcript(ring, tensors) -> dict:
    """Run ``ring(tensors, send)`` with a ``send`` that records every message (a copy of the
    chunk) and delivers a copy; return :func:`transcript` of it."""
    sends = []

    def send(src, dst, chunk):
        sends.append((int(src), int(dst), chunk.detach().clone()))
        return chunk.detach().clone()

    results = ring(tensors, send)
    return transcript(len(tensors), results, sends)


def _chunks(tensors, split=None):
    k = len(tensors)
    split = split or (lambda flat: list(flat.tensor_split(k)))
    return [split(t.detach().reshape(-1).clone()) for t in tensors]


def _no_messages(tensors, send):
    total = torch.stack(list(tensors)).sum(0)
    return [total.clone() for _ in tensors]


def _ring(tensors, send, *, right=True, gather=True, add_in_gather=False, split=None,
          finished=False):
    k = len(tensors)
    chunks = _chunks(tensors, split)
    total = torch.stack(list(tensors)).sum(0).reshape(-1)
    total_chunks = split(total.clone()) if split else list(total.tensor_split(k))

    def peer(r):
        return (r + 1) % k if right else (r - 1) % k

    def which(r, s):
        return (r - s) % k if right else (r + s) % k

    for s in range(k - 1):
        received = [send(r, peer(r), total_chunks[which(r, s)] if finished else
                         chunks[r][which(r, s)]) for r in range(k)]
        for r, payload in enumerate(received):
            c = which(r, s)
            chunks[peer(r)][c] = payload.clone() if finished else chunks[peer(r)][c] + payload
    if gather:
        for s in range(k - 1):
            received = [send(r, peer(r), chunks[r][which(r, s - 1)]) for r in range(k)]
            for r, payload in enumerate(received):
                c = which(r, s - 1)
                chunks[peer(r)][c] = chunks[peer(r)][c] + payload if add_in_gather else payload
    return [torch.cat(c).reshape(tensors[0].shape) for c in chunks]


def _chunk_split(k):
    return lambda flat: list(flat.chunk(k)) + [flat[:0]] * (k - len(flat.chunk(k)))


def ring_mistakes() -> list[Mistake]:
    """Wrong ring all-reduces, each a function ``tensors -> transcript``."""
    def as_transcript(ring):
        return lambda tensors: ring_transcript(ring, tensors)

    return [
        Mistake("the sum computed directly and copied to every worker, with no messages",
                "a ring moves the data only through send: each worker sends 2(k − 1) chunks, "
                "one per step, to its right neighbour", as_transcript(_no_messages),
                applies=lambda tensors: len(tensors) > 1),
        Mistake("the messages go to the left neighbour",
                "worker r sends to its right neighbour (r + 1) mod k, chunk (r − s) mod k in "
                "reduce-scatter step s", as_transcript(lambda t, send: _ring(t, send, right=False)),
                applies=lambda tensors: len(tensors) > 2),
        Mistake("the all-gather is missing",
                "after the reduce-scatter each worker holds only one finished chunk; k − 1 "
                "all-gather steps pass the finished chunks around the ring",
                as_transcript(lambda t, send: _ring(t, send, gather=False)),
                applies=lambda tensors: len(tensors) > 1),
        Mistake("the all-gather adds the chunk it receives instead of storing it",
                "in the all-gather the chunk that arrives is already the complete sum: store "
                "it, do not add it to the partial sum you hold",
                as_transcript(lambda t, send: _ring(t, send, add_in_gather=True)),
                applies=lambda tensors: len(tensors) > 1),
        Mistake("every message carries the finished sum of its chunk",
                "in the reduce-scatter a worker sends its partial sum, its own chunk plus what "
                "it has received so far; the sum is complete only after k − 1 steps",
                as_transcript(lambda t, send: _ring(t, send, finished=True)),
                applies=lambda tensors: len(tensors) > 1),
        Mistake("the chunks cut with torch.chunk instead of tensor_split",
                "cut each flattened tensor into k chunks with tensor_split(k): sizes that differ "
                "by at most one, the first ones longer",
                as_transcript(lambda t, send: _ring(t, send, split=_chunk_split(len(t)))),
                applies=lambda tensors: len(tensors) > 1),
    ]


# ---------------------------------------------------------------------------------------------
# shard, sharded_gradient, accumulated_gradient
# ---------------------------------------------------------------------------------------------


def _strided(X, y, rank, world_size):
    return X[rank::world_size], y[rank::world_size]


def _floor_blocks_rest_last(X, y, rank, world_size):
    size = X.shape[0] // world_size
    end = X.shape[0] if rank == world_size - 1 else (rank + 1) * size
    return X[rank * size:end], y[rank * size:end]


def _ceil_blocks(X, y, rank, world_size):
    size = -(-X.shape[0] // world_size)
    return X[rank * size:(rank + 1) * size], y[rank * size:(rank + 1) * size]


def _floor_blocks(X, y, rank, world_size):
    size = X.shape[0] // world_size
    return X[rank * size:(rank + 1) * size], y[rank * size:(rank + 1) * size]


def _uneven(X, y, rank, world_size):
    return X.shape[0] % world_size != 0


def _shard(X, y, rank, world_size):
    return X.tensor_split(world_size)[rank], y.tensor_split(world_size)[rank]


def _shard_gradients(model, loss_fn, X, y, world_size, *, skip_empty=True):
    params = list(model.parameters())
    out = []
    for rank in range(world_size):
        X_r, y_r = _shard(X, y, rank, world_size)
        if skip_empty and X_r.shape[0] == 0:
            continue
        out.append((X_r.shape[0], torch.autograd.grad(loss_fn(model(X_r), y_r), params)))
    return out


def _combine(parts, weight, params):
    total = [torch.zeros_like(p) for p in params]
    for size, grads in parts:
        for t, g in zip(total, grads):
            t.add_(g * weight(size))
    return total


def _sharded(weight):
    """A sharded gradient whose shard of b_r rows counts with ``weight(b_r, n, shards, k)``
    (``shards``: the non-empty ones)."""
    def fn(model, loss_fn, X, y, world_size):
        parts = _shard_gradients(model, loss_fn, X, y, world_size)
        return _combine(parts, lambda size: weight(size, X.shape[0], len(parts), world_size),
                        list(model.parameters()))
    return fn


def _micro_gradients(model, loss_fn, X, y, micro_batch):
    params = list(model.parameters())
    return [(X[s:s + micro_batch].shape[0],
             torch.autograd.grad(loss_fn(model(X[s:s + micro_batch]), y[s:s + micro_batch]),
                                 params))
            for s in range(0, X.shape[0], micro_batch)]


def _accumulated(weight, last_only=False):
    def fn(model, loss_fn, X, y, micro_batch):
        parts = _micro_gradients(model, loss_fn, X, y, micro_batch)
        if last_only:
            parts = parts[-1:]
        n, count = X.shape[0], len(parts)
        return _combine(parts, lambda size: weight(size, n, count), list(model.parameters()))
    return fn


def _several_micro_batches(model, loss_fn, X, y, micro_batch):
    return X.shape[0] > micro_batch


def _uneven_micro_batches(model, loss_fn, X, y, micro_batch):
    return X.shape[0] % micro_batch != 0


def parallel_mistakes():
    """``(name of the nnbolts.parallel function, [Mistake, ...])`` pairs."""
    shard = [
        Mistake("every k-th row (rank::world_size) instead of a block of consecutive rows",
                "worker rank gets a block of consecutive rows of the global batch, as "
                "minibatches shards it; striding is DistributedSampler's order",
                _strided, applies=lambda X, y, rank, world_size: len(range(
                    rank, X.shape[0], world_size)) > 1),  # one row: a block of one, too
        Mistake("blocks of n // k rows, the rest to the last worker",
                "the first n mod k workers get one row more than the others (tensor_split): "
                "the sizes differ by at most one", _floor_blocks_rest_last, applies=_uneven),
        Mistake("blocks of ceil(n / k) rows, as torch.chunk makes them",
                "the block sizes differ by at most one, the first n mod k one row longer "
                "(tensor_split, not chunk)", _ceil_blocks, applies=_uneven),
        Mistake("blocks of n // k rows: the last n mod k rows are lost",
                "every row goes to some worker: the first n mod k workers get one row more",
                _floor_blocks, applies=_uneven),
    ]
    sharded_gradient = [
        Mistake("the plain average of the shards' gradients",
                "with unequal shards the plain average weights the rows unequally: weight "
                "shard r's gradient by its share of the rows, b_r / n",
                _sharded(lambda size, n, shards, k: 1 / shards)),
        Mistake("the plain average over k workers, empty shards included",
                "weight shard r's gradient by its share of the rows, b_r / n",
                _sharded(lambda size, n, shards, k: 1 / k)),
        Mistake("the sum of the shards' gradients",
                "each shard's gradient is already a mean over its b_r rows: weight it by "
                "b_r / n instead of adding them up", _sharded(lambda size, n, shards, k: 1.0),
                applies=lambda model, loss_fn, X, y, world_size: world_size > 1),
        Mistake("the shards' gradients weighted by their sizes b_r, not by b_r / n",
                "divide by the n rows of the global batch: the weights b_r / n sum to 1",
                _sharded(lambda size, n, shards, k: float(size))),
        Mistake("the weighted sum divided by k once more",
                "the weights b_r / n already sum to 1: do not divide by k as well",
                _sharded(lambda size, n, shards, k: size / n / k),
                applies=lambda model, loss_fn, X, y, world_size: world_size > 1),
    ]
    accumulated_gradient = [
        Mistake("the micro-batches' losses are not scaled",
                "backward adds up one mean gradient per micro-batch: scale each micro-batch's "
                "loss by its share of the rows, m_j / n",
                _accumulated(lambda size, n, count: 1.0), applies=_several_micro_batches),
        Mistake("each loss divided by the number of micro-batches",
                "dividing by the number of micro-batches is right only when they all have the "
                "same size; the last one is shorter here: scale by m_j / n",
                _accumulated(lambda size, n, count: 1 / count), applies=_uneven_micro_batches),
        Mistake("only the last micro-batch's gradient (.grad zeroed inside the loop)",
                "zero .grad once, before the first micro-batch: backward must add the "
                "micro-batches' gradients up",
                _accumulated(lambda size, n, count: size / n, last_only=True),
                applies=_several_micro_batches),
        Mistake("each micro-batch's gradient scaled by m_j / n, but only the last one kept",
                "zero .grad once, before the first micro-batch: backward must add the "
                "micro-batches' gradients up",
                _accumulated(lambda size, n, count: 1.0, last_only=True),
                applies=_several_micro_batches),
    ]
    return [("shard", shard), ("sharded_gradient", sharded_gradient),
            ("accumulated_gradient", accumulated_gradient)]


# ---------------------------------------------------------------------------------------------
# the trusted check of a ring
# ---------------------------------------------------------------------------------------------


def _ring_inputs(case):
    k = 1 + case.index % 8
    shape = case.shape(min_dims=1, max_dims=2, min_size=1, max_size=7)
    return [case.randn(*shape) for _ in range(k)]


def check_ring_all_reduce(student, make_inputs=None, *, n_cases=8, **kwargs) -> None:
    """Judge a ring all-reduce on its transcript (hidden tests of exercise 09).

    ``student(tensors)`` returns ``(results, sends)``: what the student's
    ``ring_all_reduce(tensors, send)`` returned and the ``(src, dst, chunk)`` of every call of a
    recording ``send`` (a ``@grading.harness`` function in the kernel builds both). The
    transcript -- the results, the chunks each worker sent and every step's messages -- must
    equal :func:`nnbolts.parallel.ring_all_reduce`'s, so only the ring algorithm passes: the
    sum computed directly and copied to every worker sends nothing, a wrong schedule sends other
    chunks. ``make_inputs(case)`` returns the list of ``k`` tensors (default: ``k = 1..8``
    workers, tensors of 1 to 49 elements, often not divisible by ``k``); other keywords go to
    :func:`check_function`.

    Example hidden-test cell: ``check_ring_all_reduce(in_kernel(your_ring_all_reduce))``
    """
    from nnbolts import parallel

    from ._engine import Call, check_function

    def yours(tensors):
        results, sends = student(tensors)
        if not isinstance(sends, (list, tuple)):
            raise TypeError("the recorded messages are not a list")
        return transcript(len(tensors), results, [tuple(m) for m in sends])

    def reference(tensors):
        return ring_transcript(parallel.ring_all_reduce, tensors)

    def inputs(case):
        return Call((make_inputs or _ring_inputs)(case))

    check_function(yours, reference, inputs, name="ring_all_reduce", n_cases=n_cases,
                   mistakes=ring_mistakes(), **kwargs)
