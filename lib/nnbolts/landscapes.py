"""Loss landscapes with known minima, and ``descend`` to run any optimizer on one.

Explained in: book/gradient_descent.md (a 1-D quartic: where plain gradient descent
ends depends on where it starts, and momentum can carry it out of the local minimum) and
book/optimizers.md (SGD, momentum, RMSprop, Adagrad, Adam on Rosenbrock, Beale, Himmelblau,
a saddle and an ill-conditioned quadratic).

A :class:`Landscape` evaluates on tensors of shape ``(..., d)`` and returns shape ``(...)``, so
the same function serves one optimizer step (``(d,)``) and a whole contour grid
(``(H, W, d)``), on any device and floating dtype, under autograd.

Example::

    from nnbolts.landscapes import descend, get_landscape
    quartic = get_landscape("quartic")
    run = descend(quartic, torch.optim.SGD, x0=[-5.0], steps=100, lr=0.1, momentum=0.9)
    run.final            # tensor([3.2677], dtype=torch.float64): escaped to the global minimum
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ._checks import check_choice, check_floating, check_int, check_number
from .optim._base import has_modes, needs_closure

__all__ = [
    "Landscape",
    "Trajectory",
    "LANDSCAPES",
    "get_landscape",
    "descend",
    "quartic",
    "rosenbrock",
    "beale",
    "himmelblau",
    "saddle",
    "monkey_saddle",
    "quadratic",
]


@dataclass(frozen=True)
class Landscape:
    """A function of ``dim`` variables to minimise, with what is known about its minima.

    Attributes:
        name: key in :data:`LANDSCAPES`.
        f: the function on a tensor of shape ``(..., dim)``, returning shape ``(...)``;
            ``landscape(x)`` is the same with the argument checked.
        dim: 1 or 2.
        bounds: ``((low, high),) * dim`` — the box the book plots.
        minima: the global minimisers, one tuple per point.
        min_value: the global minimum value (``None`` if the function is unbounded below).
        local_minima: minimisers that are not global.
        saddle_points: stationary points that are neither.
        start: a suggested starting point for demonstrations.
        description: one line for a figure's title or a table.
    """

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    dim: int
    bounds: tuple[tuple[float, float], ...]
    minima: tuple[tuple[float, ...], ...] = ()
    min_value: float | None = None
    local_minima: tuple[tuple[float, ...], ...] = ()
    saddle_points: tuple[tuple[float, ...], ...] = ()
    start: tuple[float, ...] | None = None
    description: str = ""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        check_floating("x", x)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(
                f"the {self.name} landscape takes points of shape (..., {self.dim}), "
                f"got shape {tuple(x.shape)}"
            )
        return self.f(x)

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """∇f at ``x`` (shape ``(..., dim)``) by autograd, detached from any graph."""
        with torch.enable_grad():
            point = x.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self(point).sum(), point)
        return grad

    def grid(
        self,
        resolution: int = 200,
        *,
        bounds: Sequence[tuple[float, float]] | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """Values on a regular grid over ``bounds`` (default :attr:`bounds`), for plotting.

        1-D: ``(x, f(x))`` with ``resolution`` points. 2-D: ``(X, Y, Z)``, each of shape
        ``(resolution, resolution)``, ``X`` varying along columns as in ``np.meshgrid``.
        """
        resolution = check_int("resolution", resolution, low=2)
        box = self.bounds if bounds is None else tuple(bounds)
        if len(box) != self.dim:
            raise ValueError(f"expected {self.dim} (low, high) pairs in bounds, got {box!r}")
        axes = [torch.linspace(lo, hi, resolution, dtype=dtype, device=device) for lo, hi in box]
        with torch.no_grad():
            if self.dim == 1:
                return axes[0], self.f(axes[0].unsqueeze(-1))
            gx, gy = torch.meshgrid(axes[0], axes[1], indexing="xy")
            return gx, gy, self.f(torch.stack([gx, gy], dim=-1))


# --- the functions ------------------------------------------------------------------------

# The book's quartic, and its stationary points: the roots of f'(x), a cubic,
# solved to 40 digits with mpmath.findroot and rounded to float64. f'(x*) vanishes there to
# rounding, f''(x*) > 0 at both minima (≈3.463 and ≈3.010) and < 0 at the maximum.
_QUARTIC = (319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840, 6.0)
QUARTIC_GLOBAL_MIN = 3.272765339558436  # f = 0.8812471800601579
QUARTIC_LOCAL_MIN = -3.254993730859253  # f = 2.492882457345547
QUARTIC_LOCAL_MAX = -0.21996596606595403  # f = 6.039114280532595


def _quartic(x: torch.Tensor) -> torch.Tensor:
    a4, a3, a2, a1, a0 = _QUARTIC
    t = x[..., 0]
    return (((a4 * t + a3) * t + a2) * t + a1) * t + a0  # Horner: fewer roundings than powers


def quartic() -> Landscape:
    r"""The book's 1-D quartic
    :math:`f(x) = \tfrac{319}{8400}x^4 + \tfrac{43}{4200}x^3 - \tfrac{6799}{8400}x^2
    - \tfrac{299}{840}x + 6`.

    Global minimum at :math:`x^\star = 3.2727653395584360` (:math:`f = 0.88124718`), a local
    one at :math:`-3.2549937308592531` (:math:`f = 2.49288246`), a maximum between them at
    :math:`-0.2199659660659540`. Gradient descent with ``lr=0.1`` from ``x0=5`` finds the
    global minimum, from ``x0=-5`` the local one; with momentum 0.9 from ``-5`` it crosses the
    hump and reaches the global one.
    """
    return Landscape(
        name="quartic",
        f=_quartic,
        dim=1,
        bounds=((-6.0, 6.0),),
        minima=((QUARTIC_GLOBAL_MIN,),),
        min_value=0.8812471800601579,
        local_minima=((QUARTIC_LOCAL_MIN,),),
        start=(-5.0,),
        description="a quartic with a global and a local minimum",
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Landscape:
    r"""Rosenbrock's banana :math:`f(x, y) = (a - x)^2 + b\,(y - x^2)^2`.

    Minimum 0 at :math:`(a, a^2)`, at the bottom of a long, curved, flat-bottomed valley: the
    gradient points across the valley, not along it, so plain gradient descent zig-zags.
    """
    check_number("a", a)
    check_number("b", b, low=0.0, low_open=True)
    a, b = float(a), float(b)

    def f(x: torch.Tensor) -> torch.Tensor:
        u, v = x[..., 0], x[..., 1]
        return (a - u) ** 2 + b * (v - u**2) ** 2

    return Landscape(
        name="rosenbrock",
        f=f,
        dim=2,
        bounds=((-2.0, 2.0), (-1.0, 3.0)),
        minima=((a, a * a),),
        min_value=0.0,
        start=(-1.5, 2.5),
        description=f"Rosenbrock (a={a:g}, b={b:g}): a curved valley",
    )


def _beale(x: torch.Tensor) -> torch.Tensor:
    u, v = x[..., 0], x[..., 1]
    return (
        (1.5 - u + u * v) ** 2
        + (2.25 - u + u * v**2) ** 2
        + (2.625 - u + u * v**3) ** 2
    )


def beale() -> Landscape:
    r"""Beale's function :math:`(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2`.

    Minimum 0 at :math:`(3, 0.5)`; flat plateaus and steep walls make step sizes matter.
    """
    return Landscape(
        name="beale",
        f=_beale,
        dim=2,
        bounds=((-4.5, 4.5), (-4.5, 4.5)),
        minima=((3.0, 0.5),),
        min_value=0.0,
        start=(1.0, 1.5),
        description="Beale: plateaus and sharp ridges",
    )


def _himmelblau(x: torch.Tensor) -> torch.Tensor:
    u, v = x[..., 0], x[..., 1]
    return (u**2 + v - 11) ** 2 + (u + v**2 - 7) ** 2


def himmelblau() -> Landscape:
    r"""Himmelblau's function :math:`(x^2 + y - 11)^2 + (x + y^2 - 7)^2`.

    Four global minima, all with value 0: :math:`(3, 2)` exactly and three irrational ones
    (solved to 20 digits with mpmath, rounded to float64). Which one an optimizer reaches
    depends on the start.
    """
    return Landscape(
        name="himmelblau",
        f=_himmelblau,
        dim=2,
        bounds=((-5.0, 5.0), (-5.0, 5.0)),
        minima=(
            (3.0, 2.0),
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.2831859912861696),
            (3.5844283403304917, -1.8481265269644036),
        ),
        min_value=0.0,
        saddle_points=(),
        start=(-0.5, -0.5),
        description="Himmelblau: four minima of equal value",
    )


def _saddle(x: torch.Tensor) -> torch.Tensor:
    return x[..., 0] ** 2 - x[..., 1] ** 2


def saddle() -> Landscape:
    r"""The saddle :math:`f(x, y) = x^2 - y^2`.

    **No minimum**: it is unbounded below along :math:`y`, so ``minima`` is empty and
    ``min_value`` is ``None``. The origin is a stationary point (gradient 0) that is a
    minimum along :math:`x` and a maximum along :math:`y`. Gradient descent started exactly on
    the :math:`x`-axis converges to it; the slightest :math:`y` offset grows by a factor
    :math:`1 + 2\eta` per step, which is how noise and momentum escape saddles.
    """
    return Landscape(
        name="saddle",
        f=_saddle,
        dim=2,
        bounds=((-2.0, 2.0), (-2.0, 2.0)),
        saddle_points=((0.0, 0.0),),
        start=(-1.5, 0.01),
        description="x² − y²: a saddle, unbounded below",
    )


def _monkey_saddle(x: torch.Tensor) -> torch.Tensor:
    u, v = x[..., 0], x[..., 1]
    return u**3 - 3 * u * v**2


def monkey_saddle() -> Landscape:
    r"""The monkey saddle :math:`x^3 - 3xy^2`: three valleys around a flat stationary point.

    No minimum (unbounded below); at the origin both the gradient **and** the Hessian vanish,
    so a second-order method sees nothing there either.
    """
    return Landscape(
        name="monkey_saddle",
        f=_monkey_saddle,
        dim=2,
        bounds=((-1.5, 1.5), (-1.5, 1.5)),
        saddle_points=((0.0, 0.0),),
        start=(1.0, 0.05),
        description="x³ − 3xy²: a monkey saddle, unbounded below",
    )


def quadratic(condition: float = 10.0, angle: float = 0.0) -> Landscape:
    r"""The ill-conditioned quadratic :math:`f(\mathbf x) = \tfrac12 \mathbf x^\top H \mathbf x`
    with Hessian :math:`H = R_\theta\,\mathrm{diag}(1, \kappa)\,R_\theta^\top`.

    ``condition`` is :math:`\kappa = \lambda_{\max}/\lambda_{\min}` and ``angle`` (radians)
    rotates the ellipses away from the axes. Minimum 0 at the origin. Gradient descent is
    stable only for :math:`\eta < 2/\kappa` and then needs about :math:`\kappa` steps to
    shrink the error along the flat direction by :math:`e` — the reason for momentum (about
    :math:`\sqrt\kappa`) and per-coordinate scaling (RMSprop/Adam; exact for ``angle=0``).
    """
    check_number("condition number", condition, low=1.0)
    check_number("angle", angle)
    kappa, theta = float(condition), float(angle)
    c, s = math.cos(theta), math.sin(theta)

    def f(x: torch.Tensor) -> torch.Tensor:
        u, v = x[..., 0], x[..., 1]
        along, across = c * u + s * v, -s * u + c * v  # coordinates in the eigenbasis
        return 0.5 * (along**2 + kappa * across**2)

    return Landscape(
        name="ill_conditioned",
        f=f,
        dim=2,
        bounds=((-3.0, 3.0), (-3.0, 3.0)),
        minima=((0.0, 0.0),),
        min_value=0.0,
        start=(-2.5, 1.5),
        description=f"ill-conditioned quadratic, condition number {kappa:g}",
    )


LANDSCAPES: dict[str, Landscape] = {
    scape.name: scape
    for scape in (
        quartic(), rosenbrock(), beale(), himmelblau(), saddle(), monkey_saddle(), quadratic()
    )
}
"""Every landscape of the book by name: ``quartic``, ``rosenbrock``, ``beale``,
``himmelblau``, ``saddle``, ``monkey_saddle``, ``ill_conditioned`` (condition number 10)."""


def get_landscape(name: str) -> Landscape:
    """The landscape registered under ``name`` in :data:`LANDSCAPES`."""
    if not isinstance(name, str):
        raise TypeError(f"expected a landscape name (str), got {type(name).__name__}")
    return LANDSCAPES[check_choice("landscape", name, LANDSCAPES)]


# --- running an optimizer -----------------------------------------------------------------


@dataclass
class Trajectory:
    """The path of one optimizer on one landscape, as returned by :func:`descend`.

    ``xs`` has shape ``(n + 1, d)`` (the start, then the point after each of the ``n``
    steps), ``losses`` shape ``(n + 1,)`` (f at each of those points) and ``lrs`` shape
    ``(n,)`` (the learning rate each step used, from the first parameter group). ``n`` equals
    ``steps`` unless the run diverged: then it stops at the first non-finite loss or point,
    which is the last entry, and ``diverged`` is ``True``.
    """

    xs: torch.Tensor
    losses: torch.Tensor
    lrs: torch.Tensor
    diverged: bool = False
    landscape: str = ""
    optimizer: str = ""

    @property
    def final(self) -> torch.Tensor:
        """The last point, shape ``(d,)``."""
        return self.xs[-1]

    @property
    def final_loss(self) -> torch.Tensor:
        return self.losses[-1]

    @property
    def steps(self) -> int:
        """Number of optimizer steps taken."""
        return self.xs.shape[0] - 1


def _is_lr(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)) or (
        isinstance(value, torch.Tensor) and value.numel() == 1
    )


def _make_optimizer(optimizer, params: list[torch.Tensor], kwargs: dict):
    if isinstance(optimizer, type):
        if not issubclass(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"expected optimizer to be a torch.optim.Optimizer subclass, got {optimizer!r}"
            )
        return optimizer(params, **kwargs)
    if not callable(optimizer):
        raise TypeError(
            "expected optimizer to be a torch.optim.Optimizer subclass or a callable "
            f"params -> optimizer, got {type(optimizer).__name__}"
        )
    if kwargs:
        raise TypeError(
            f"optimizer keyword arguments {sorted(kwargs)} are only accepted with an optimizer "
            "class; put them in the callable instead"
        )
    made = optimizer(params)
    if not isinstance(made, torch.optim.Optimizer):
        raise TypeError(
            f"the optimizer callable must return a torch.optim.Optimizer, got {type(made).__name__}"
        )
    return made


def _make_schedule(schedule, opt):
    """Tell the two kinds of ``schedule`` apart: ``(lr_of_step, scheduler)``, one of them None.

    A step -> lr callable returns a number for step 0; an ``optimizer -> scheduler`` factory
    cannot be called with 0 (torch's schedulers raise TypeError for a non-optimizer).
    """
    if schedule is None:
        return None, None
    if not callable(schedule):
        raise TypeError(f"expected schedule to be callable, got {type(schedule).__name__}")
    try:
        first = schedule(0)
    except (TypeError, AttributeError) as as_step_error:
        scheduler = schedule(opt)
        if not (hasattr(scheduler, "step") and hasattr(scheduler, "get_last_lr")):
            raise TypeError(
                "schedule must be a callable step -> lr or a callable optimizer -> "
                f"torch.optim.lr_scheduler scheduler; it returned {type(scheduler).__name__}"
            ) from as_step_error
        return None, scheduler
    if not _is_lr(first):
        raise TypeError(
            "schedule must be a callable step -> lr (a number) or optimizer -> scheduler; "
            f"schedule(0) returned {type(first).__name__}"
        )
    return schedule, None


def descend(
    landscape: Landscape | str,
    optimizer,
    x0: Sequence[float] | torch.Tensor | None = None,
    steps: int = 100,
    *,
    schedule=None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    on_divergence: str = "stop",
    **optimizer_kwargs,
) -> Trajectory:
    r"""Minimise ``landscape`` from ``x0`` with ``steps`` steps of ``optimizer``.

    Each step evaluates :math:`f(x_t)`, backpropagates and calls ``optimizer.step()``; the
    point is a single leaf tensor of shape ``(d,)``, the optimizer's only parameter.

    Arguments:
        landscape: a :class:`Landscape` or its name in :data:`LANDSCAPES`.
        optimizer: a ``torch.optim.Optimizer`` subclass (``torch.optim.SGD``,
            ``nnbolts.optim.Adam``, ...) built as ``optimizer([x], **optimizer_kwargs)``, or a
            callable ``params -> optimizer`` (then no ``optimizer_kwargs``).
        x0: the start; default ``landscape.start``. A tensor's dtype and device are kept
            unless ``dtype``/``device`` say otherwise.
        schedule: ``None``; a callable ``step -> lr`` (such as an ``nnbolts.schedules``
            schedule), whose value is written to every group's ``"lr"`` before step
            ``t = 0, 1, ...``; or a factory ``optimizer -> torch.optim.lr_scheduler``
            scheduler, stepped after every optimizer step. The two are told apart by calling
            ``schedule(0)``: a step schedule returns a number.
        dtype, device: default float64 (the book compares trajectories to many digits) on
            the CPU.
        on_divergence: ``"stop"`` (default) ends the run at the first non-finite loss or
            point and returns it with ``diverged=True`` — the book plots such runs;
            ``"raise"`` raises ``FloatingPointError`` instead.

    An optimizer whose ``step`` requires a closure (``torch.optim.LBFGS``,
    :class:`nnbolts.optim.LBFGS`) is given one; one with training and evaluation weights
    (:class:`nnbolts.optim.ScheduleFreeAdamW`) is put in ``train()`` mode and the trajectory
    records its training point.

    Example — the lesson of book/gradient_descent.md::

        descend("quartic", torch.optim.SGD, [5.0], 100, lr=0.1).final    # ≈ 3.2728, global
        descend("quartic", torch.optim.SGD, [-5.0], 100, lr=0.1).final   # ≈ -3.2550, local
        descend("quartic", torch.optim.SGD, [-5.0], 100, lr=0.1, momentum=0.9).final  # 3.2677
    """
    if isinstance(landscape, str):
        landscape = get_landscape(landscape)
    if not isinstance(landscape, Landscape):
        raise TypeError(f"expected a Landscape or its name, got {type(landscape).__name__}")
    steps = check_int("steps", steps, low=0)
    check_choice("on_divergence", on_divergence, ("stop", "raise"))
    x = _start_point(landscape, x0, dtype, device)
    opt = _make_optimizer(optimizer, [x], optimizer_kwargs)
    lr_of_step, scheduler = _make_schedule(schedule, opt)
    uses_closure = needs_closure(opt)
    if has_modes(opt):  # schedule-free: step at the training point y (x is its eval())
        opt.train()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = landscape.f(x)
        loss.backward()
        return loss

    points, losses, lrs = [], [], []
    diverged = False
    for t in range(steps):
        if lr_of_step is not None:
            lr = lr_of_step(t)
            for group in opt.param_groups:
                group["lr"] = lr
        loss = closure()
        points.append(x.detach().clone())
        losses.append(loss.detach())
        if not _finite(x, loss):
            diverged = True
            break
        lrs.append(float(opt.param_groups[0]["lr"]))
        if uses_closure:
            opt.step(closure)
        else:
            opt.step()
        if scheduler is not None:
            scheduler.step()
    else:
        with torch.no_grad():
            points.append(x.detach().clone())
            losses.append(landscape.f(x).detach())
        diverged = not _finite(points[-1], losses[-1])

    if diverged and on_divergence == "raise":
        raise FloatingPointError(
            f"{type(opt).__name__} diverged on the {landscape.name} landscape: non-finite "
            f"loss or point after {len(points) - 1} steps (lower the learning rate)"
        )
    return Trajectory(
        xs=torch.stack(points),
        losses=torch.stack(losses),
        lrs=torch.tensor(lrs, dtype=x.dtype, device=x.device),
        diverged=diverged,
        landscape=landscape.name,
        optimizer=type(opt).__name__,
    )


def _finite(x: torch.Tensor, loss: torch.Tensor) -> bool:
    # One host sync per step: the runs are a handful of scalars, and stopping at the first
    # inf keeps a diverged run's plot readable.
    return bool(torch.isfinite(loss).all() & torch.isfinite(x).all())


def _start_point(landscape: Landscape, x0, dtype, device) -> torch.Tensor:
    if x0 is None:
        if landscape.start is None:
            raise ValueError(f"the {landscape.name} landscape has no default start; pass x0")
        x0 = landscape.start
    if isinstance(x0, torch.Tensor):
        check_floating("x0", x0)
        x = x0.detach().to(
            dtype=dtype or x0.dtype, device=device if device is not None else x0.device
        )
    else:
        if isinstance(x0, numbers.Real):
            x0 = [x0]
        try:
            values = [float(v) for v in x0]
        except (TypeError, ValueError) as error:
            raise TypeError(f"expected x0 to be a sequence of numbers, got {x0!r}") from error
        x = torch.tensor(values, dtype=dtype or torch.float64, device=device)
    if not x.is_floating_point():
        raise TypeError(f"expected a floating dtype, got {x.dtype}")
    if x.shape != (landscape.dim,):
        raise ValueError(
            f"x0 must have shape ({landscape.dim},) for the {landscape.name} landscape, "
            f"got {tuple(x.shape)}"
        )
    return x.clone().requires_grad_(True)
