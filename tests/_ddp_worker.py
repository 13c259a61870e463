"""One data-parallel worker, launched twice by tests/test_distributed.py (not a test module).

Usage: python tests/_ddp_worker.py OUT_DIR, with the torchrun-style environment variables
MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE set. Joins a gloo process group on loopback,
trains the shared problem with ``fit`` on a DistributedDataParallel model and writes its final
parameters and history to OUT_DIR/rank<RANK>.pt.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nnbolts.data import make_blobs
from nnbolts.train import EarlyStopping, accuracy, fit

N_SAMPLES = 96  # divisible by WORLD_SIZE * PER_WORKER_BATCH
PER_WORKER_BATCH = 8
EPOCHS = 4
CONFIGS = {"sgd": dict(lr=0.2), "momentum": dict(lr=0.1, momentum=0.9, nesterov=True)}


def problem():
    return make_blobs(N_SAMPLES, centers=3, std=1.5, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(0))  # fmt: skip


def validation():
    return make_blobs(30, centers=3, std=1.5, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(1))  # fmt: skip


def model():
    torch.manual_seed(42)  # the same initial weights in every process
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3)).double()


def data_generator():
    return torch.Generator().manual_seed(7)  # identically seeded on every worker


def train(config, *, epochs=EPOCHS, wrap=True, checkpoint=None, resume=False, batch_size=None):
    """``fit`` as a user would call it; unchanged whether or not it runs on several workers."""
    net = model()
    trained = DistributedDataParallel(net) if wrap else net
    optimizer = torch.optim.SGD(trained.parameters(), **CONFIGS[config])
    history = fit(trained, F.cross_entropy, optimizer, problem(), val=validation(),
                  epochs=epochs, batch_size=batch_size or PER_WORKER_BATCH,
                  generator=data_generator(), metrics={"acc": accuracy},
                  early_stopping=EarlyStopping(patience=100, restore_best=False),
                  checkpoint=checkpoint, resume=resume, progress=False)  # fmt: skip
    return net, history


def main(out_dir: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank = dist.get_rank()
    results = {}
    for config in CONFIGS:
        net, history = train(config)
        results[config] = {"state": net.state_dict(), "history": history.to_dict()}
    # an interrupted data-parallel run resumed from rank 0's checkpoint
    checkpoint = out_dir / "ddp.pt"
    train("momentum", epochs=2, checkpoint=checkpoint)  # fit waits for rank 0's write
    net, history = train("momentum", checkpoint=checkpoint, resume=True)
    results["resumed"] = {"state": net.state_dict(), "history": history.to_dict()}
    torch.save(results, out_dir / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
