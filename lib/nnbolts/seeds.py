"""Seeds that a build can shift: every random draw of the book goes through here.

A chapter's claim about a stochastic run ("the large rate climbs back up") must hold for the
run it shows *and* for runs it does not show. The book therefore never hard-codes a seed: it
asks for ``seeds.generator(n)``, which is seeded with ``n + offset()``, where the offset comes
from the environment variable ``NNBOLTS_SEED_OFFSET`` (0 when unset). ``make book`` builds with
offset 0; ``make book-check`` executes every chapter again with offset 1 (and other CPU kernels
and thread counts), so a claim that only held for one lucky draw fails the check.

A chapter shows one seed and checks its claim, hidden from the reader, over ``CHECK_SEEDS``
seeds ``generator(n), generator(n + 1), ...`` with a margin.

Explained in: book/intro.md (how the book keeps its claims honest).
"""

from __future__ import annotations

import os

import torch

ENV_VAR = "NNBOLTS_SEED_OFFSET"

#: How many seeds a chapter's hidden check of a stochastic claim runs over (the issue tracker's
#: rule: "shown on one seed, checked over at least 5 with a margin").
CHECK_SEEDS = 5


def offset() -> int:
    """The seed offset of this build: ``int($NNBOLTS_SEED_OFFSET)``, 0 when unset.

    Raises ``ValueError`` naming the variable and its value when it is not a non-negative
    integer (a typo must not silently build the book with seed 0).
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"Invalid {ENV_VAR}: {raw!r} (expected a non-negative integer)") from None
    if value < 0:
        raise ValueError(f"Invalid {ENV_VAR}: {raw!r} (expected a non-negative integer)")
    return value


def seed(n: int) -> int:
    """The seed to use where a chapter means seed ``n``: ``n + offset()``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"Invalid seed: {n!r} (expected a non-negative integer)")
    return n + offset()


def generator(n: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed(n)``.

    Equivalent to ``torch.Generator(device).manual_seed(n + offset())``.
    """
    return torch.Generator(device=device).manual_seed(seed(n))


def manual_seed(n: int) -> int:
    """Seed torch's global generators (CPU and every CUDA device) with ``seed(n)``.

    For what takes no generator argument (``nn.Dropout``'s masks, ``torch.randperm`` inside a
    ``DataLoader``). Returns the seed used.
    """
    value = seed(n)
    torch.manual_seed(value)
    return value
