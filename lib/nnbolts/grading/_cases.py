"""Devices, dtypes and seeded random cases for the hidden tests."""

from __future__ import annotations

import contextvars

import torch

RUN_SEED: contextvars.ContextVar[int] = contextvars.ContextVar("run_seed", default=0)
"""Added to every check's seed: the trusted side draws it afresh for each grading run (and
records it), so a submission cannot know its cases in advance."""


def run_seed(seed: int) -> int:
    """``seed`` shifted by this run's :data:`RUN_SEED`."""
    return int(seed) + RUN_SEED.get()


DTYPES = (torch.float32, torch.float64)
"""The dtypes every graded function is checked in."""


def devices() -> list[torch.device]:
    """The devices to check on: the CPU always, the first CUDA device when one is available.

    (Apple's MPS is left out: it has no float64, and every function is graded in float64 too.)

    Example hidden-test cell: ``check_elementwise(relu, nnbolts.activations.relu,
    devices=devices()[:1])``
    """
    found = [torch.device("cpu")]
    if torch.cuda.is_available():
        found.append(torch.device("cuda", 0))
    return found


# Values where activations and their derivatives are most often wrong: exact zeros (relu's
# kink), tiny values, the saturated tails and magnitudes that overflow a naive exp.
_SPECIAL = (0.0, -0.0, 1e-7, -1e-7, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 5.0, -5.0, 10.0, -10.0,
            20.0, -20.0, 40.0, -40.0)
_LARGE = (100.0, -100.0, 1000.0, -1000.0, 1e4, -1e4)


class Case:
    """One seeded random case, on one device and dtype.

    The random draws depend only on ``(seed, index)``: they are made in float64 on the CPU and
    then converted, so the same case holds the same numbers (up to rounding) on every device
    and in every dtype. Hidden tests build their inputs from a case with the helpers below.

    Attributes: ``index`` (0, 1, ...), ``seed``, ``device``, ``dtype``, ``generator`` (a seeded
    CPU ``torch.Generator``; use it for any further draws).

    Example hidden-test cell: ``check_function(fan_in_and_fan_out, nnbolts.init.fan_in_and_fan_out,
    lambda case: case.randn(*case.shape(min_dims=2)))``
    """

    def __init__(self, seed: int, index: int, device, dtype: torch.dtype):
        self.seed, self.index = run_seed(seed), int(index)
        self.device, self.dtype = torch.device(device), dtype
        self.generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.index)

    def __repr__(self) -> str:
        return (f"Case(seed={self.seed}, index={self.index}, device={self.device}, "
                f"dtype={self.dtype})")

    # -- primitive draws ------------------------------------------------------------------
    def _put(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.device, dtype=self.dtype)

    def randn(self, *shape, scale: float = 1.0) -> torch.Tensor:
        """Standard normal draws times ``scale``, on the case's device and dtype."""
        t = torch.randn(shape, generator=self.generator, dtype=torch.float64)
        return self._put(t * scale)

    def rand(self, *shape, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        """Uniform draws in ``[low, high)``."""
        t = torch.rand(shape, generator=self.generator, dtype=torch.float64)
        return self._put(low + (high - low) * t)

    def randint(self, low: int, high: int) -> int:
        """A Python int in ``[low, high)``."""
        return int(torch.randint(low, high, (1,), generator=self.generator).item())

    def choice(self, options):
        """One of ``options``, drawn."""
        options = list(options)
        return options[self.randint(0, len(options))]

    def tensor(self, data) -> torch.Tensor:
        """``data`` (nested lists of numbers) on the case's device and dtype."""
        return torch.tensor(data, dtype=self.dtype, device=self.device)

    def shape(self, min_dims: int = 1, max_dims: int = 3, min_size: int = 1,
              max_size: int = 6) -> tuple[int, ...]:
        """A random shape with ``min_dims``–``max_dims`` dimensions of ``min_size``–``max_size``."""
        dims = self.randint(min_dims, max_dims + 1)
        return tuple(self.randint(min_size, max_size + 1) for _ in range(dims))

    # -- inputs for the kinds of graded functions ---------------------------------------------
    def activation_input(self, *, large: bool = True, min_dims: int = 1) -> torch.Tensor:
        """A pre-activation ``z`` for an activation or its derivative.

        Case 0 is the list of special values (0, −0, ±1e−7, ±0.5, ... ±40, and ±100 ... ±1e4
        when ``large``); case 1 is ``N(0, 3²)`` with a fifth of the entries exactly 0; case 2 is
        ``N(0, 30²)`` (saturated); case 3 ``N(0, 1)``; from case 4 on the regimes repeat on new
        shapes, with case 5 at ``N(0, 500²)`` when ``large``.
        """
        regime = self.index % 6
        if regime == 0:
            data = list(_SPECIAL) + (list(_LARGE) if large else [])
            z = self.tensor(data)
            if min_dims > 1:
                z = z.reshape(2, -1)
                for _ in range(min_dims - 2):
                    z = z.unsqueeze(0)
            return z
        shape = self.shape(min_dims=min_dims, max_dims=max(3, min_dims), min_size=2)
        if regime == 1:
            z = self.randn(*shape, scale=3.0)
            zero = self.rand(*shape) < 0.2
            return z.masked_fill(zero, 0.0)
        if regime == 2:
            return self.randn(*shape, scale=30.0)
        if regime == 5 and large:
            return self.randn(*shape, scale=500.0)
        return self.randn(*shape)

    def logits(self, *, large: bool = True) -> torch.Tensor:
        """Scores for softmax-like functions: at least 2-D, with one large-magnitude case
        (index 2, entries up to ~1e3) where an exp without the max shift overflows."""
        shape = self.shape(min_dims=2, max_dims=3, min_size=2, max_size=6)
        scale = (300.0 if large else 3.0) if self.index % 3 == 2 else 3.0
        return self.randn(*shape, scale=scale)


def cases(seed: int = 0, n: int = 6, *, devices=None, dtypes=None) -> list[Case]:
    """``n`` seeded cases for each device and dtype: the list a ``check_*`` function walks.

    ``devices`` defaults to :func:`devices` (CPU, and CUDA when present), ``dtypes`` to
    :data:`DTYPES`. Case ``i`` has the same numbers on every device and dtype.

    Example hidden-test cell: ``for case in cases(seed=3, n=2): print(case.activation_input())``
    """
    chosen_devices = _devices_or_default(devices)
    chosen_dtypes = tuple(dtypes) if dtypes is not None else DTYPES
    return [Case(seed, i, device, dtype)
            for device in chosen_devices for dtype in chosen_dtypes for i in range(n)]


def _devices_or_default(chosen) -> list[torch.device]:
    if chosen is None:
        return devices()
    if isinstance(chosen, (str, torch.device)):
        chosen = [chosen]
    return [torch.device(d) for d in chosen]
