"""fit across workers: data-parallel SGD on k workers with batch b equals one process with k*b.

Two CPU processes join a gloo process group on loopback, each runs ``fit`` unchanged on a
DistributedDataParallel model (tests/_ddp_worker.py); their final parameters must match the
single-process run with batch 2*b to 1e-10 in float64.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
import _ddp_worker as worker  # noqa: E402

WORLD_SIZE = 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed"
    ),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out_dir: Path) -> dict[int, dict]:
    """Start WORLD_SIZE workers the way torchrun would, wait, return what each one saved."""
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
               WORLD_SIZE=str(WORLD_SIZE), OMP_NUM_THREADS="1")  # fmt: skip
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # stay on loopback whatever the host's interfaces
    script = Path(worker.__file__)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(out_dir)],
                         env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        for rank in range(WORLD_SIZE)
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=120)[0].decode(errors="replace"))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for rank, (proc, output) in enumerate(zip(procs, outputs, strict=True)):
        assert proc.returncode == 0, f"worker {rank} failed:\n{output[-3000:]}"
    return {
        rank: torch.load(out_dir / f"rank{rank}.pt", weights_only=True)
        for rank in range(WORLD_SIZE)
    }


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    return launch(tmp_path_factory.mktemp("ddp"))


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def max_abs_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("config", list(worker.CONFIGS))
def test_two_workers_equal_one_process_with_twice_the_batch(workers, config):
    single, history = worker.train(config, wrap=False,
                                   batch_size=WORLD_SIZE * worker.PER_WORKER_BATCH)  # fmt: skip
    reference = single.state_dict()
    for rank in range(WORLD_SIZE):
        diff = max_abs_diff(workers[rank][config]["state"], reference)
        assert diff <= 1e-10, f"rank {rank}: parameters differ by {diff:.3g}"
    # the losses in the History are averaged over the workers: every rank records the same
    # values, and they are those of the single process (up to rounding)
    distributed = workers[0][config]["history"]
    assert distributed == workers[1][config]["history"]
    assert len(distributed["step_loss"]) == len(history.step_loss) == worker.EPOCHS * 6
    assert distributed["step_loss"] == pytest.approx(history.step_loss, rel=1e-12)
    assert distributed["epochs"].keys() == history.epochs.keys()
    for key, values in history.epochs.items():
        assert distributed["epochs"][key] == pytest.approx(values, rel=1e-12), key
    assert distributed["best_epoch"] == history.best_epoch


def test_a_resumed_data_parallel_run_matches_the_uninterrupted_one(workers):
    for rank in range(WORLD_SIZE):
        straight, resumed = workers[rank]["momentum"], workers[rank]["resumed"]
        assert resumed["history"] == straight["history"]
        assert all(torch.equal(resumed["state"][k], v) for k, v in straight["state"].items())
