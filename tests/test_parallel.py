"""nnbolts.parallel: the ring all-reduce equals the sum (k = 1..8, sizes not divisible by k),
sends 2(k - 1) chunks per worker to its right neighbour and matches torch.distributed's
all_reduce; the shards are minibatches' shards; the sharded and accumulated gradients equal the
full-batch gradient; bad arguments are named."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnbolts import data, parallel
from nnbolts.grading._parallel_mistakes import ring_transcript

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))]
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-14)}


def _gen(seed):
    return torch.Generator().manual_seed(2000 + seed)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", range(1, 9))
@pytest.mark.parametrize("shape", [(1,), (5,), (7,), (13,), (3, 5), (2, 3, 4)])
def test_ring_all_reduce_is_the_sum_on_every_worker(k, shape, dtype, device):
    g = _gen(k)
    tensors = [torch.randn(shape, generator=g, dtype=torch.float64).to(device, dtype)
               for _ in range(k)]
    before = [t.clone() for t in tensors]
    out = parallel.ring_all_reduce(tensors)
    total = torch.stack(tensors).sum(0)
    assert len(out) == k
    for t in out:
        assert t.shape == total.shape and t.dtype == dtype and t.device == total.device
        torch.testing.assert_close(t, total, **TOL[dtype])
    assert all(torch.equal(a, b) for a, b in zip(tensors, before)), "inputs unchanged"
    assert all(o.data_ptr() != t.data_ptr() for o, t in zip(out, tensors)), "new tensors"


@pytest.mark.parametrize("k", range(1, 9))
@pytest.mark.parametrize("P", [1, 6, 11, 40])
def test_ring_sends_2_k_minus_1_chunks_per_worker_to_the_right(k, P):
    tensors = [torch.randn(P, generator=_gen(P), dtype=torch.float64) for _ in range(k)]
    messages = []

    def send(src, dst, chunk):
        messages.append((src, dst, chunk.numel()))
        return chunk.clone()

    parallel.ring_all_reduce(tensors, send)
    assert len(messages) == 2 * (k - 1) * k
    for r in range(k):
        mine = [m for m in messages if m[0] == r]
        assert len(mine) == 2 * (k - 1)
        assert all(dst == (r + 1) % k for _, dst, _ in mine)
    # every worker sends each of the k chunks' worth: 2 (k - 1) / k * P numbers, up to rounding
    # of the chunk sizes (tensor_split: sizes differ by at most one)
    for r in range(k):
        sent = sum(n for src, _, n in messages if src == r)
        assert abs(sent - 2 * (k - 1) * P / k) <= 2 * (k - 1)
    # step by step: in each step every worker sends exactly once
    for step in range(2 * (k - 1)):
        assert sorted(m[0] for m in messages[step * k:(step + 1) * k]) == list(range(k))


def test_ring_messages_are_the_partial_sums_of_the_schedule():
    k = 3
    tensors = [torch.tensor([1.0, 2.0, 3.0]) * (r + 1) for r in range(k)]
    steps = ring_transcript(parallel.ring_all_reduce, tensors)["steps"]
    as_lists = [[(s, d, c.tolist()) for s, d, c in step] for step in steps]
    assert as_lists == [
        [(0, 1, [1.0]), (1, 2, [4.0]), (2, 0, [9.0])],  # own chunk r
        [(0, 1, [12.0]), (1, 2, [3.0]), (2, 0, [10.0])],  # partial sums of chunk r - 1
        [(0, 1, [12.0]), (1, 2, [18.0]), (2, 0, [6.0])],  # complete chunk r + 1
        [(0, 1, [6.0]), (1, 2, [12.0]), (2, 0, [18.0])],  # complete chunk r
    ]


def test_ring_matches_torch_distributed_all_reduce():
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("needs torch.distributed with gloo")
    # A one-process gloo group through a file store (no sockets between processes): all_reduce
    # with op=SUM of one tensor is the tensor itself, as the ring's k = 1 case is.
    import tempfile

    with tempfile.NamedTemporaryFile() as f:
        store = dist.FileStore(f.name, 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        try:
            t = torch.randn(7, generator=_gen(0), dtype=torch.float64)
            expected = t.clone()
            dist.all_reduce(expected, op=dist.ReduceOp.SUM)
            (got,) = parallel.ring_all_reduce([t])
            assert torch.equal(got, expected)
        finally:
            dist.destroy_process_group()


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("b", [1, 3, 5])
@pytest.mark.parametrize("n", [7, 21, 24])
def test_shard_is_what_minibatches_gives_each_rank(n, b, k):
    X = torch.arange(2 * n, dtype=torch.float64).reshape(n, 2)
    y = torch.arange(n)
    whole = list(data.minibatches(X, y, k * b, generator=torch.Generator().manual_seed(5)))
    per_rank = [list(data.minibatches(X, y, b, rank=r, world_size=k,
                                      generator=torch.Generator().manual_seed(5)))
                for r in range(k)]
    for step, (Xg, yg) in enumerate(whole):
        for r in range(k):
            X_r, y_r = parallel.shard(Xg, yg, r, k)
            assert torch.equal(X_r, per_rank[r][step][0]) and torch.equal(y_r, per_rank[r][step][1])


def test_shard_sizes_and_empty_shards():
    X, y = torch.arange(7.0).unsqueeze(1), torch.arange(7)
    assert [parallel.shard(X, y, r, 3)[1].tolist() for r in range(3)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [parallel.shard(X[:2], y[:2], r, 3)[1].tolist() for r in range(3)] == [[0], [1], []]


def _network(dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 4))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return net.to(device, dtype)


def _full(net, loss_fn, X, y):
    return torch.autograd.grad(loss_fn(net(X), y), list(net.parameters()))


def _problem(n, dtype, device, loss, seed):
    g = _gen(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64).to(device, dtype)
    if loss is F.cross_entropy:
        y = torch.randint(0, 4, (n,), generator=g).to(device)
    else:
        y = torch.randn(n, 4, generator=g, dtype=torch.float64).to(device, dtype)
    return X, y


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", [F.cross_entropy, F.mse_loss], ids=["ce", "mse"])
@pytest.mark.parametrize("n, k", [(12, 3), (10, 3), (7, 4), (2, 5), (1, 1), (9, 2)])
def test_sharded_gradient_is_the_full_batch_gradient(n, k, loss, dtype, device):
    net = _network(dtype, device)
    X, y = _problem(n, dtype, device, loss, n * 10 + k)
    got = parallel.sharded_gradient(net, loss, X, y, k)
    assert all(p.grad is None for p in net.parameters())
    for g, e in zip(got, _full(net, loss, X, y), strict=True):
        torch.testing.assert_close(g, e, **TOL[dtype])


def test_the_plain_average_of_unequal_shards_is_not_the_gradient():
    net = _network(torch.float64, "cpu")
    X, y = _problem(10, torch.float64, "cpu", F.cross_entropy, 3)
    params = list(net.parameters())
    shards = [parallel.shard(X, y, r, 3) for r in range(3)]
    plain = [sum(gs) / 3 for gs in zip(*(torch.autograd.grad(
        F.cross_entropy(net(a), b), params) for a, b in shards))]
    full = _full(net, F.cross_entropy, X, y)
    assert max((p - f).abs().max().item() for p, f in zip(plain, full)) > 1e-4


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", [F.cross_entropy, F.mse_loss], ids=["ce", "mse"])
@pytest.mark.parametrize("n, m", [(12, 4), (10, 4), (7, 1), (5, 9), (9, 2)])
def test_accumulated_gradient_is_the_full_batch_gradient(n, m, loss, dtype, device):
    net = _network(dtype, device)
    X, y = _problem(n, dtype, device, loss, n * 10 + m)
    with torch.no_grad():
        for p in net.parameters():
            p.grad = torch.ones_like(p)  # stale gradients must not leak in
    got = parallel.accumulated_gradient(net, loss, X, y, m)
    expected = _full(net, loss, X, y)
    for g, e, p in zip(got, expected, net.parameters(), strict=True):
        torch.testing.assert_close(g, e, **TOL[dtype])
        torch.testing.assert_close(p.grad, e, **TOL[dtype])


def test_bad_arguments_name_the_argument():
    net = _network(torch.float64, "cpu")
    X, y = _problem(6, torch.float64, "cpu", F.cross_entropy, 0)
    with pytest.raises(ValueError, match="rank"):
        parallel.shard(X, y, 3, 3)
    with pytest.raises(ValueError, match="world_size"):
        parallel.shard(X, y, 0, 0)
    with pytest.raises(TypeError, match="world_size"):
        parallel.sharded_gradient(net, F.cross_entropy, X, y, 2.0)
    with pytest.raises(ValueError, match="micro_batch"):
        parallel.accumulated_gradient(net, F.cross_entropy, X, y, 0)
    with pytest.raises(ValueError, match="rows"):
        parallel.shard(X, y[:5], 0, 2)
    with pytest.raises(TypeError, match="model"):
        parallel.sharded_gradient(lambda x: x, F.cross_entropy, X, y, 2)
    with pytest.raises(TypeError, match="loss_fn"):
        parallel.accumulated_gradient(net, "mse", X, y, 2)
    with pytest.raises(TypeError, match="tensors"):
        parallel.ring_all_reduce(torch.ones(3))
    with pytest.raises(ValueError, match=r"tensors\[1\]"):
        parallel.ring_all_reduce([torch.ones(3), torch.ones(4)])
    with pytest.raises(TypeError, match="send"):
        parallel.ring_all_reduce([torch.ones(3)], send=3)


_GLOO_WORKER = """
import sys, torch, torch.distributed as dist
rank, k, out, store = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=k)
g = torch.Generator().manual_seed(100 + rank)
t = torch.randn(2, 7, generator=g, dtype=torch.float64)
dist.all_reduce(t)  # op=SUM, as ring_all_reduce
torch.save(t, f"{out}/rank{rank}.pt")
dist.destroy_process_group()
"""


@pytest.mark.slow
@pytest.mark.parametrize("k", [3])
def test_ring_matches_gloo_all_reduce_across_processes(k, tmp_path):
    """k gloo processes on loopback all-reduce the tensors the ring sums in one process."""
    import os
    import subprocess
    import sys

    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("needs torch.distributed with gloo")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    store = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, "-c", _GLOO_WORKER, str(r), str(k),
                               str(tmp_path), str(store)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for r in range(k)]
    outputs = []
    try:
        outputs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, text) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"worker {rank} failed:\n{text[-3000:]}"
    tensors = [torch.randn(2, 7, generator=torch.Generator().manual_seed(100 + r),
                           dtype=torch.float64) for r in range(k)]
    ring = parallel.ring_all_reduce(tensors)
    for r in range(k):
        torch.testing.assert_close(ring[r], torch.load(tmp_path / f"rank{r}.pt"),
                                   rtol=1e-12, atol=1e-14)


def test_the_ring_check_accepts_the_ring_and_rejects_each_known_mistake():
    from nnbolts import grading
    from nnbolts.grading import _parallel_mistakes as pm

    def recorded(ring):
        def student(tensors):
            sends = []

            def send(src, dst, chunk):
                sends.append((src, dst, chunk.clone()))
                return chunk.clone()

            return ring(tensors, send), sends
        return student

    grading.check_ring_all_reduce(recorded(parallel.ring_all_reduce), devices=["cpu"])
    wrong = {
        "no messages": pm._no_messages,
        "left": lambda t, send: pm._ring(t, send, right=False),
        "no all-gather": lambda t, send: pm._ring(t, send, gather=False),
        "gather adds": lambda t, send: pm._ring(t, send, add_in_gather=True),
        "finished sums": lambda t, send: pm._ring(t, send, finished=True),
        "torch.chunk": lambda t, send: pm._ring(t, send, split=pm._chunk_split(len(t))),
    }
    for label, ring in wrong.items():
        with pytest.raises(grading.GradingFailure) as failure:
            grading.check_ring_all_reduce(recorded(ring), devices=["cpu"])
        assert "This looks like" in str(failure.value) or label == "torch.chunk", (label, failure)
