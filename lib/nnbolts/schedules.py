r"""Learning-rate schedules: pure functions of the step.

A schedule is a small callable object: ``schedule(step) -> lr`` (a Python ``float``). It holds
no state, so the same object can be evaluated anywhere (plots, tests, a resumed run), printed
(``repr`` reads like the call that built it) and pickled into a checkpoint. Build the shape you
want by composition rather than by flags::

    warmup(cosine(0.1, total_steps=900), warmup_steps=100)      # 100 steps up, 900 steps down
    sequence([constant(0.1), exponential(0.1, 0.99)], [500])    # flat, then decay

Conventions (PyTorch's):

* ``step`` counts *completed* optimizer updates, so the first update uses ``schedule(0)``, the
  second ``schedule(1)``, ... This is the ``last_epoch`` of ``torch.optim.lr_scheduler`` and the
  argument of the function given to ``LambdaLR``. The Deep Learning book numbers its updates
  from :math:`k = 1` and writes :math:`\epsilon` for the learning rate; its :math:`\epsilon_k`
  is our :math:`\eta_{k-1}` = ``schedule(k - 1)``.
* Steps or epochs: a schedule does not know what a step is. Call it with the epoch index (and
  call ``scheduler.step()`` once per epoch) to get an epoch-based schedule such as
  :math:`\eta_e = \eta_0 d^{\lfloor e / e_d \rfloor}`; or keep stepping per minibatch and wrap
  it in :func:`per_epoch` so that the value only changes at epoch boundaries.
* Wrappers restart the clock: in ``warmup(s, w)`` and ``sequence([..., s, ...], ...)`` the
  schedule ``s`` sees its own step counter, starting at 0 where it takes over (as in
  ``optax.join_schedules`` and ``torch.optim.lr_scheduler.SequentialLR``).

Use :func:`to_lambda_lr` to drive a ``torch.optim`` optimizer with any schedule, and :func:`lr_at`
to tabulate one for a plot.

Explained in: book/schedules.md
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from ._checks import check_choice, check_int, check_number

__all__ = [
    "Schedule",
    "constant",
    "step_decay",
    "multistep",
    "exponential",
    "inverse_time",
    "inverse_sqrt",
    "linear",
    "polynomial",
    "cosine",
    "cosine_restarts",
    "cyclic",
    "one_cycle",
    "warmup",
    "sequence",
    "per_epoch",
    "range_test",
    "lr_at",
    "to_lambda_lr",
]


# --------------------------------------------------------------------------- validation


def _real(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """A finite real number, with a message that says which bound it broke."""
    check_number(name, value)  # type and NaN
    number = float(value)
    if math.isinf(number):
        raise ValueError(f"Invalid {name}: {value} (must be finite)")
    if low is not None and (number < low or (low_open and number == low)):
        raise ValueError(f"Invalid {name}: {value} (must be {'>' if low_open else '>='} {low})")
    if high is not None and (number > high or (high_open and number == high)):
        raise ValueError(f"Invalid {name}: {value} (must be {'<' if high_open else '<='} {high})")
    return number


def _rate(name: str, value, *, allow_zero: bool = False) -> float:
    """A learning rate: positive (or non-negative) and finite."""
    return _real(name, value, low=0.0, low_open=not allow_zero)


def _not_above(name: str, value: float, ref_name: str, ref: float) -> None:
    if value > ref:
        raise ValueError(f"Invalid {name}: {value} (must be <= {ref_name}={ref})")


def _decay_factor(name: str, value) -> float:
    # Factors above 1 make the rate grow without bound (and ``gamma ** step`` overflow); an
    # increasing phase is a warmup, which has its own wrapper.
    return _real(name, value, low=0.0, low_open=True, high=1.0)


def _increasing_ints(name: str, values, *, low: int) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"expected {name} to be a list of ints, got {type(values).__name__}")
    values = tuple(values)
    for i, value in enumerate(values):
        check_int(f"{name}[{i}]", value, low=low)
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"Invalid {name}: {list(values)} (must be strictly increasing)")
    return tuple(int(v) for v in values)


def _callable(name: str, value) -> Callable[[int], float]:
    if not callable(value):
        raise TypeError(f"expected {name} to be a schedule (a callable step -> lr), "
                        f"got {type(value).__name__}: {value!r}")
    return value


# --------------------------------------------------------------------------- the base class


class Schedule:
    """Base class: validates the step, evaluates :meth:`value`, prints and compares by fields.

    Subclasses list their constructor arguments in ``_fields`` (in call order) and implement
    ``value(t)`` for a validated integer ``t >= 0``.
    """

    _name = "schedule"
    _fields: tuple[str, ...] = ()

    def __call__(self, step) -> float:
        return float(self.value(check_int("step", step, low=0)))

    def value(self, t: int) -> float:
        raise TypeError(f"{type(self).__name__} does not define value(t)")

    def _items(self):
        return tuple((f, getattr(self, f)) for f in self._fields)

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={v!r}" for f, v in self._items())
        return f"{self._name}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._items() == other._items()

    def __hash__(self) -> int:
        return hash((type(self), self._items()))


# --------------------------------------------------------------------------- step decays


class _Constant(Schedule):
    _name, _fields = "constant", ("lr",)

    def __init__(self, lr):
        self.lr = lr

    def value(self, t):
        return self.lr


def constant(lr: float) -> Schedule:
    r"""The same rate at every step: :math:`\eta_t = \eta_0`.

    torch: no scheduler (or ``LambdaLR(opt, lambda t: 1.0)``).

    Explained in: book/schedules.md

    >>> constant(0.1)(1000)
    0.1
    """
    return _Constant(_rate("lr", lr))


class _StepDecay(Schedule):
    _name, _fields = "step_decay", ("lr", "step_size", "gamma")

    def __init__(self, lr, step_size, gamma):
        self.lr, self.step_size, self.gamma = lr, step_size, gamma

    def value(self, t):
        return self.lr * self.gamma ** (t // self.step_size)


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    r"""Multiply the rate by ``gamma`` every ``step_size`` steps (a staircase).

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}

    Called with the epoch index this is the epoch form
    :math:`\eta_e = \eta_0 d^{\lfloor e / e_d \rfloor}` ("halve it every 5 epochs" is
    ``step_decay(lr, 5, 0.5)``).

    torch: ``StepLR(opt, step_size=s, gamma=gamma)`` with ``opt``'s lr equal to ``lr``.

    Explained in: book/schedules.md

    >>> s = step_decay(1.0, step_size=2, gamma=0.5)
    >>> [s(t) for t in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    return _StepDecay(_rate("lr", lr), check_int("step_size", step_size, low=1),
                      _decay_factor("gamma", gamma))


class _MultiStep(Schedule):
    _name, _fields = "multistep", ("lr", "milestones", "gamma")

    def __init__(self, lr, milestones, gamma):
        self.lr, self.milestones, self.gamma = lr, milestones, gamma

    def value(self, t):
        # The number of milestones already reached (a milestone m counts from step m on).
        return self.lr * self.gamma ** bisect_right(self.milestones, t)


def multistep(lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    r"""Multiply the rate by ``gamma`` at each of the given steps.

    .. math:: \eta_t = \eta_0 \, \gamma^{\#\{i \,:\, m_i \le t\}}

    ``milestones`` must be strictly increasing integers ``>= 1``.

    torch: ``MultiStepLR(opt, milestones, gamma=gamma)``.

    Explained in: book/schedules.md

    >>> s = multistep(1.0, [2, 5], gamma=0.1)
    >>> [s(t) for t in (0, 1, 2, 4, 5, 100)]
    [1.0, 1.0, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002]
    """
    return _MultiStep(_rate("lr", lr), _increasing_ints("milestones", milestones, low=1),
                      _decay_factor("gamma", gamma))


class _Exponential(Schedule):
    _name, _fields = "exponential", ("lr", "gamma")

    def __init__(self, lr, gamma):
        self.lr, self.gamma = lr, gamma

    def value(self, t):
        return self.lr * self.gamma ** t


def exponential(lr: float, gamma: float) -> Schedule:
    r"""Multiply the rate by ``gamma`` at every step.

    .. math:: \eta_t = \eta_0 \, \gamma^{t}

    The continuous form :math:`\eta_t = \eta_0 e^{-k t}` is the same curve with
    :math:`\gamma = e^{-k}`: ``exponential(lr, math.exp(-k))``.

    torch: ``ExponentialLR(opt, gamma=gamma)``.

    Explained in: book/schedules.md

    >>> s = exponential(1.0, gamma=0.5)
    >>> [s(t) for t in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """
    return _Exponential(_rate("lr", lr), _decay_factor("gamma", gamma))


class _InverseTime(Schedule):
    _name, _fields = "inverse_time", ("lr", "decay_rate", "decay_steps")

    def __init__(self, lr, decay_rate, decay_steps):
        self.lr, self.decay_rate, self.decay_steps = lr, decay_rate, decay_steps

    def value(self, t):
        return self.lr / (1.0 + self.decay_rate * t / self.decay_steps)


def inverse_time(lr: float, decay_rate: float, decay_steps: int = 1) -> Schedule:
    r"""The ":math:`1/t`" decay.

    .. math:: \eta_t = \frac{\eta_0}{1 + k\, t / n}

    with :math:`k` = ``decay_rate`` and :math:`n` = ``decay_steps`` (the rate has halved after
    :math:`n / k` steps). It satisfies the Robbins–Monro conditions
    :math:`\sum_t \eta_t = \infty`, :math:`\sum_t \eta_t^2 < \infty`.

    torch: no built-in scheduler; ``LambdaLR(opt, lambda t: 1 / (1 + k * t / n))``.
    (TensorFlow: ``InverseTimeDecay(lr, n, k)``.)

    Explained in: book/schedules.md

    >>> s = inverse_time(1.0, decay_rate=0.5)
    >>> [s(t) for t in (0, 2, 6)]
    [1.0, 0.5, 0.25]
    """
    return _InverseTime(_rate("lr", lr), _real("decay_rate", decay_rate, low=0.0),
                        check_int("decay_steps", decay_steps, low=1))


class _InverseSqrt(Schedule):
    _name, _fields = "inverse_sqrt", ("lr", "warmup_steps")

    def __init__(self, lr, warmup_steps):
        self.lr, self.warmup_steps = lr, warmup_steps

    def value(self, t):
        tau = max(self.warmup_steps, 1)
        return self.lr * math.sqrt(tau / (t + tau))


def inverse_sqrt(lr: float, warmup_steps: int = 0) -> Schedule:
    r"""Inverse-square-root decay, the Transformer schedule's tail.

    .. math:: \eta_t = \eta_0 \sqrt{\frac{\bar w}{t + \bar w}}, \qquad \bar w = \max(w, 1)

    with :math:`w` = ``warmup_steps``. It starts at :math:`\eta_0` and falls like
    :math:`1/\sqrt{t}`:

    * ``warmup_steps=0``: :math:`\eta_t = \eta_0 / \sqrt{t + 1}`, the plain
      :math:`\eta_0/\sqrt{k}` with :math:`k = t + 1` the number of the update being made.
    * ``warmup_steps=w``: the decay that follows a warmup of ``w`` steps. Since :func:`warmup`
      restarts the clock of the schedule it wraps, ``warmup(inverse_sqrt(lr, w), w)`` is, on the
      overall step count :math:`t`,

      .. math:: \eta_t = \eta_0 \min\!\Big(\frac{t}{w},\ \sqrt{\frac{w}{\max(t, w)}}\Big),

      the schedule of "Attention is all you need" scaled to peak at :math:`\eta_0` (there the
      peak is :math:`d_{model}^{-1/2} w^{-1/2}`). The T5 variant, flat for ``w`` steps and then
      :math:`\eta_0 \sqrt{w / t}`, is ``warmup(inverse_sqrt(lr, w), w, start_factor=1.0)``.

    torch: no built-in scheduler; ``LambdaLR(opt, lambda t: math.sqrt(w1 / (t + w1)))`` with
    ``w1 = max(w, 1)``.

    Explained in: book/schedules.md

    >>> s = inverse_sqrt(1.0)
    >>> [s(t) for t in (0, 3, 99)]
    [1.0, 0.5, 0.1]
    >>> s = warmup(inverse_sqrt(1.0, warmup_steps=4), warmup_steps=4)
    >>> [s(t) for t in (0, 2, 4, 16)]
    [0.0, 0.5, 1.0, 0.5]
    """
    return _InverseSqrt(_rate("lr", lr), check_int("warmup_steps", warmup_steps, low=0))


# --------------------------------------------------------------------------- anneal to a floor


class _Linear(Schedule):
    _name, _fields = "linear", ("lr", "final_lr", "total_steps")

    def __init__(self, lr, final_lr, total_steps):
        self.lr, self.final_lr, self.total_steps = lr, final_lr, total_steps

    def value(self, t):
        alpha = min(t, self.total_steps) / self.total_steps
        return (1.0 - alpha) * self.lr + alpha * self.final_lr


def linear(lr: float, final_lr: float, total_steps: int) -> Schedule:
    r"""Linear decay to ``final_lr`` over ``total_steps`` steps, then constant.

    The Deep Learning book's rule (section 8.3.1, beside Algorithm 8.1), with :math:`T` =
    ``total_steps`` and :math:`\eta_T` = ``final_lr``:

    .. math::

        \eta_t = \Big(1 - \frac tT\Big)\, \eta_0 + \frac tT\, \eta_T \quad (t \le T),
        \qquad \eta_t = \eta_T \quad (t > T)

    so :math:`\eta_T` is reached at step :math:`T` and kept (the Deep Learning book writes
    :math:`\epsilon` for the rate, :math:`\tau` for :math:`T` and :math:`\alpha` for
    :math:`t/T`). ``final_lr`` may exceed ``lr``, which makes this a linear ramp.

    torch: ``LinearLR(opt, start_factor=1.0, end_factor=final_lr / lr, total_iters=T)``.

    Explained in: book/schedules.md

    >>> s = linear(1.0, final_lr=0.1, total_steps=10)
    >>> [s(t) for t in (0, 5, 10, 20)]
    [1.0, 0.55, 0.1, 0.1]
    """
    return _Linear(_rate("lr", lr), _rate("final_lr", final_lr, allow_zero=True),
                   check_int("total_steps", total_steps, low=1))


class _Polynomial(Schedule):
    _name, _fields = "polynomial", ("lr", "total_steps", "final_lr", "power")

    def __init__(self, lr, total_steps, final_lr, power):
        self.lr, self.total_steps, self.final_lr, self.power = lr, total_steps, final_lr, power

    def value(self, t):
        remaining = 1.0 - min(t, self.total_steps) / self.total_steps
        return (self.lr - self.final_lr) * remaining ** self.power + self.final_lr


def polynomial(lr: float, total_steps: int, final_lr: float = 0.0,
               power: float = 1.0) -> Schedule:
    r"""Polynomial decay to ``final_lr`` over ``total_steps`` steps, then constant.

    .. math::

        \eta_t = (\eta_0 - \eta_T) \Big(1 - \frac{\min(t, T)}{T}\Big)^{p} + \eta_T

    ``power=1`` is linear decay (:func:`linear` is the same curve); ``power=0.5`` decays slowly
    at first, ``power=2`` quickly.

    torch: ``PolynomialLR(opt, total_iters=T, power=p)`` when ``final_lr == 0``.
    (TensorFlow: ``PolynomialDecay(lr, T, final_lr, power)``.)

    Explained in: book/schedules.md

    >>> s = polynomial(1.0, total_steps=4, power=2.0)
    >>> [s(t) for t in range(6)]
    [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """
    lr = _rate("lr", lr)
    final_lr = _rate("final_lr", final_lr, allow_zero=True)
    _not_above("final_lr", final_lr, "lr", lr)
    return _Polynomial(lr, check_int("total_steps", total_steps, low=1), final_lr,
                       _real("power", power, low=0.0, low_open=True))


def _cosine_between(high: float, low: float, t: int, period: int) -> float:
    # Half a cosine wave from ``high`` (t = 0) down to ``low`` (t = period).
    return low + (high - low) * (1 + math.cos(math.pi * t / period)) / 2


class _Cosine(Schedule):
    _name, _fields = "cosine", ("lr", "total_steps", "final_lr")

    def __init__(self, lr, total_steps, final_lr):
        self.lr, self.total_steps, self.final_lr = lr, total_steps, final_lr

    def value(self, t):
        return _cosine_between(self.lr, self.final_lr, min(t, self.total_steps), self.total_steps)


def cosine(lr: float, total_steps: int, final_lr: float = 0.0) -> Schedule:
    r"""Cosine annealing to ``final_lr`` over ``total_steps`` steps, then constant.

    .. math::

        \eta_t = \eta_T + \frac{\eta_0 - \eta_T}{2}
        \Big(1 + \cos\Big(\pi \frac{\min(t, T)}{T}\Big)\Big)

    torch: ``CosineAnnealingLR(opt, T_max=T, eta_min=final_lr)`` for :math:`t \le T` (torch keeps
    following the cosine back up after :math:`T`; this schedule stays at :math:`\eta_T`).

    Explained in: book/schedules.md

    >>> s = cosine(1.0, total_steps=4)
    >>> [round(s(t), 6) for t in range(6)]
    [1.0, 0.853553, 0.5, 0.146447, 0.0, 0.0]
    """
    lr = _rate("lr", lr)
    final_lr = _rate("final_lr", final_lr, allow_zero=True)
    _not_above("final_lr", final_lr, "lr", lr)
    return _Cosine(lr, check_int("total_steps", total_steps, low=1), final_lr)


class _CosineRestarts(Schedule):
    _name, _fields = "cosine_restarts", ("lr", "first_period", "period_mult", "final_lr")

    def __init__(self, lr, first_period, period_mult, final_lr):
        self.lr, self.first_period, self.period_mult, self.final_lr = (
            lr, first_period, period_mult, final_lr)

    def value(self, t):
        period = self.first_period
        if self.period_mult == 1:
            t_cur = t % period
        else:
            # Walk over the finished periods; they grow geometrically, so this loop runs about
            # log(t) times, and integer arithmetic puts every restart exactly where it belongs.
            t_cur = t
            while t_cur >= period:
                t_cur -= period
                period *= self.period_mult
        return _cosine_between(self.lr, self.final_lr, t_cur, period)


def cosine_restarts(lr: float, first_period: int, period_mult: int = 1,
                    final_lr: float = 0.0) -> Schedule:
    r"""Cosine annealing with warm restarts (SGDR).

    The rate follows a half cosine from ``lr`` towards ``final_lr`` over a period of
    :math:`T_i` steps, then jumps back to ``lr``; each period is ``period_mult`` times longer
    than the one before (:math:`T_i = T_0 m^i`):

    .. math::

        \eta_t = \eta_{min} + \frac{\eta_0 - \eta_{min}}{2}
        \Big(1 + \cos\Big(\pi \frac{t_{cur}}{T_i}\Big)\Big)

    where :math:`t_{cur}` is the number of steps since the last restart.

    torch: ``CosineAnnealingWarmRestarts(opt, T_0=first_period, T_mult=period_mult,
    eta_min=final_lr)``.

    Explained in: book/schedules.md

    >>> s = cosine_restarts(1.0, first_period=2, period_mult=2)
    >>> [round(s(t), 6) for t in range(8)]
    [1.0, 0.5, 1.0, 0.853553, 0.5, 0.146447, 1.0, 0.96194]
    """
    lr = _rate("lr", lr)
    final_lr = _rate("final_lr", final_lr, allow_zero=True)
    _not_above("final_lr", final_lr, "lr", lr)
    return _CosineRestarts(lr, check_int("first_period", first_period, low=1),
                           check_int("period_mult", period_mult, low=1), final_lr)


# --------------------------------------------------------------------------- cycles


_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


class _Cyclic(Schedule):
    _name = "cyclic"
    _fields = ("base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma")

    def __init__(self, base_lr, max_lr, step_size_up, step_size_down, mode, gamma):
        self.base_lr, self.max_lr = base_lr, max_lr
        self.step_size_up, self.step_size_down = step_size_up, step_size_down
        self.mode, self.gamma = mode, gamma

    def value(self, t):
        cycle_length = self.step_size_up + self.step_size_down
        cycle, u = divmod(t, cycle_length)
        if u <= self.step_size_up:
            height = u / self.step_size_up
        else:
            height = (cycle_length - u) / self.step_size_down
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = 0.5 ** cycle
        else:
            scale = self.gamma ** t
        return self.base_lr + (self.max_lr - self.base_lr) * height * scale


def cyclic(base_lr: float, max_lr: float, step_size_up: int, step_size_down: int | None = None,
           mode: str = "triangular", gamma: float = 1.0) -> Schedule:
    r"""Cyclical learning rate: triangles between ``base_lr`` and ``max_lr``.

    Each cycle climbs linearly for ``step_size_up`` steps and descends for ``step_size_down``
    (default: the same). With :math:`c` the 0-based cycle index and :math:`h_t \in [0, 1]` the
    triangle's height,

    .. math:: \eta_t = \eta_{base} + (\eta_{max} - \eta_{base})\, h_t\, s_t

    where the amplitude scale :math:`s_t` is 1 (``"triangular"``), :math:`2^{-c}`
    (``"triangular2"``, halved every cycle) or :math:`\gamma^{t}` (``"exp_range"``).

    torch: ``CyclicLR(opt, base_lr, max_lr, step_size_up, step_size_down, mode, gamma,
    cycle_momentum=False)`` (torch also cycles the momentum unless told not to).

    Explained in: book/schedules.md

    >>> s = cyclic(0.0, 1.0, step_size_up=2)
    >>> [s(t) for t in range(6)]
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.5]
    """
    base_lr = _rate("base_lr", base_lr, allow_zero=True)
    max_lr = _rate("max_lr", max_lr)
    if max_lr < base_lr:
        raise ValueError(f"Invalid max_lr: {max_lr} (must be >= base_lr={base_lr})")
    step_size_up = check_int("step_size_up", step_size_up, low=1)
    if step_size_down is None:
        step_size_down = step_size_up
    step_size_down = check_int("step_size_down", step_size_down, low=1)
    check_choice("mode", mode, _CYCLIC_MODES)
    return _Cyclic(base_lr, max_lr, step_size_up, step_size_down, mode,
                   _decay_factor("gamma", gamma))


class _OneCycle(Schedule):
    _name = "one_cycle"
    _fields = ("max_lr", "total_steps", "pct_start", "anneal", "div_factor", "final_div_factor",
               "three_phase")

    def __init__(self, max_lr, total_steps, pct_start, anneal, div_factor, final_div_factor,
                 three_phase):
        self.max_lr, self.total_steps, self.pct_start = max_lr, total_steps, pct_start
        self.anneal, self.div_factor, self.final_div_factor = anneal, div_factor, final_div_factor
        self.three_phase = three_phase

    def phases(self) -> list[tuple[float, float, float]]:
        """``(end_step, start_lr, end_lr)`` of each phase, the first starting at step 0.

        Phase ends are torch's (possibly fractional) steps; the last one is ``total_steps - 1``.
        """
        start_lr = self.max_lr / self.div_factor
        min_lr = start_lr / self.final_div_factor
        up_end = self.pct_start * self.total_steps - 1
        last = self.total_steps - 1
        if self.three_phase:
            return [(up_end, start_lr, self.max_lr), (2 * up_end, self.max_lr, start_lr),
                    (last, start_lr, min_lr)]
        return [(up_end, start_lr, self.max_lr), (last, self.max_lr, min_lr)]

    def _anneal(self, lr_from, lr_to, frac):
        if self.anneal == "linear":
            return (lr_to - lr_from) * frac + lr_from
        return lr_to + (lr_from - lr_to) / 2.0 * (math.cos(math.pi * frac) + 1)

    def value(self, t):
        phases = self.phases()
        last_end, _, min_lr = phases[-1]
        if t >= last_end:
            return min_lr
        begin = 0.0
        for end, lr_from, lr_to in phases:
            if t <= end:
                return self._anneal(lr_from, lr_to, (t - begin) / (end - begin))
            begin = end
        return min_lr  # not reached: t < last_end puts t in some phase


def one_cycle(max_lr: float, total_steps: int, pct_start: float = 0.3, anneal: str = "cos",
              div_factor: float = 25.0, final_div_factor: float = 1e4,
              three_phase: bool = False) -> Schedule:
    r"""The 1cycle policy: one climb to ``max_lr`` and one long descent far below the start.

    The rate starts at :math:`\eta_{start} = \eta_{max} / \text{div\_factor}`, rises to
    :math:`\eta_{max}` over the first ``pct_start`` of the steps, then falls to
    :math:`\eta_{min} = \eta_{start} / \text{final\_div\_factor}` at step ``total_steps - 1``
    and stays there. Inside a phase from step :math:`a` to step :math:`b` with
    :math:`p = (t - a) / (b - a)`, the rate goes from :math:`\eta_{from}` to :math:`\eta_{to}` by

    .. math::

        \eta_t = \eta_{to} + \frac{\eta_{from} - \eta_{to}}{2} \big(1 + \cos(\pi p)\big)
        \quad\text{(anneal="cos")}, \qquad
        \eta_t = \eta_{from} + (\eta_{to} - \eta_{from})\, p \quad\text{(anneal="linear")}.

    Phase boundaries are torch's: the climb ends at step :math:`u = \text{pct\_start} \cdot T - 1`.
    With ``three_phase=True`` the rate comes back down to :math:`\eta_{start}` at step
    :math:`2u` (a mirror image of the climb) before the final fall to :math:`\eta_{min}`.

    torch: ``OneCycleLR(opt, max_lr, total_steps=T, pct_start, anneal_strategy=anneal,
    div_factor, final_div_factor, three_phase)``; its momentum cycling is not a learning rate
    and is left out. torch refuses to go past ``total_steps``; this schedule stays at
    :math:`\eta_{min}`.

    Explained in: book/schedules.md

    >>> s = one_cycle(1.0, total_steps=10, pct_start=0.5, anneal="linear", div_factor=10.0,
    ...               final_div_factor=10.0)
    >>> [round(s(t), 3) for t in (0, 2, 4, 5, 9, 10)]
    [0.1, 0.55, 1.0, 0.802, 0.01, 0.01]
    """
    max_lr = _rate("max_lr", max_lr)
    total_steps = check_int("total_steps", total_steps, low=1)
    pct_start = _real("pct_start", pct_start, low=0.0, high=1.0, low_open=True, high_open=True)
    check_choice("anneal", anneal, ("cos", "linear"))
    div_factor = _real("div_factor", div_factor, low=0.0, low_open=True)
    final_div_factor = _real("final_div_factor", final_div_factor, low=0.0, low_open=True)
    if not isinstance(three_phase, bool):
        raise TypeError(f"expected three_phase to be a bool, got {type(three_phase).__name__}")
    schedule = _OneCycle(max_lr, total_steps, pct_start, anneal, div_factor, final_div_factor,
                         three_phase)
    # Every phase must last longer than zero steps, or its interpolation divides by zero.
    begin = 0.0
    for end, _, _ in schedule.phases():
        if end <= begin:
            raise ValueError(
                f"Invalid pct_start: {pct_start} with total_steps={total_steps}"
                f"{' and three_phase=True' if three_phase else ''} (a phase of the cycle would "
                "have no steps; the climb ends at step pct_start * total_steps - 1, which must "
                "be > 0" + (", and 2 * that must stay below total_steps - 1" if three_phase
                            else "") + ")")
        begin = end
    return schedule


# --------------------------------------------------------------------------- composition


class _Warmup(Schedule):
    _name, _fields = "warmup", ("schedule", "warmup_steps", "start_factor")

    def __init__(self, schedule, warmup_steps, start_factor):
        self.schedule, self.warmup_steps, self.start_factor = schedule, warmup_steps, start_factor

    def value(self, t):
        if t >= self.warmup_steps:
            return self.schedule(t - self.warmup_steps)
        peak = self.schedule(0)
        return peak * (self.start_factor + (1.0 - self.start_factor) * t / self.warmup_steps)


def warmup(schedule: Callable[[int], float], warmup_steps: int,
           start_factor: float = 0.0) -> Schedule:
    r"""Prepend a linear warmup of ``warmup_steps`` steps to ``schedule``.

    With :math:`w` = ``warmup_steps``, :math:`f` = ``start_factor`` and :math:`s` the wrapped
    schedule,

    .. math::

        \eta_t = \begin{cases}
          s(0)\,\big(f + (1 - f)\, t / w\big) & t < w \\
          s(t - w) & t \ge w
        \end{cases}

    The rate climbs in a straight line from :math:`f\, s(0)` to :math:`s(0)`, the value the
    wrapped schedule starts from, which it reaches at step :math:`w`. The wrapped schedule is
    *shifted*: it starts its own clock at 0 when the warmup ends (optax's ``join_schedules``),
    so ``warmup(cosine(lr, T), w)`` warms up for ``w`` steps and then runs the whole cosine,
    ``w + T`` steps in all. With the default ``start_factor=0`` the first update uses rate 0.

    torch: ``SequentialLR(opt, [LinearLR(opt, start_factor=f, end_factor=1.0, total_iters=w),
    <the wrapped scheduler>], milestones=[w])`` (torch requires :math:`f > 0`).

    Explained in: book/schedules.md

    >>> s = warmup(constant(1.0), warmup_steps=4)
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    return _Warmup(_callable("schedule", schedule), check_int("warmup_steps", warmup_steps, low=1),
                   _real("start_factor", start_factor, low=0.0, high=1.0))


class _Sequence(Schedule):
    _name, _fields = "sequence", ("schedules", "boundaries")

    def __init__(self, schedules, boundaries):
        self.schedules, self.boundaries = schedules, boundaries

    def value(self, t):
        i = bisect_right(self.boundaries, t)
        start = self.boundaries[i - 1] if i else 0
        return self.schedules[i](t - start)


def sequence(schedules: Sequence[Callable[[int], float]], boundaries: Sequence[int]) -> Schedule:
    r"""Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, and so on.

    .. math:: \eta_t = s_i(t - b_i) \quad\text{for } b_i \le t < b_{i+1}, \qquad b_0 = 0

    Each schedule starts its own clock at 0 at its boundary, so a schedule means the same
    thing wherever it is placed. ``boundaries`` are strictly increasing integers ``>= 1``, one
    fewer than the schedules.

    torch: ``SequentialLR(opt, schedulers, milestones=boundaries)``.
    (optax: ``join_schedules(schedules, boundaries)``.)

    Explained in: book/schedules.md

    >>> s = sequence([constant(1.0), exponential(0.5, gamma=0.5)], boundaries=[2])
    >>> [s(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.25, 0.125]
    """
    if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Iterable):
        raise TypeError(
            f"expected schedules to be a list of schedules, got {type(schedules).__name__}")
    schedules = tuple(_callable(f"schedules[{i}]", s) for i, s in enumerate(schedules))
    if not schedules:
        raise ValueError("Invalid schedules: [] (need at least one schedule)")
    boundaries = _increasing_ints("boundaries", boundaries, low=1)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"Invalid boundaries: {list(boundaries)} (need len(schedules) - 1 = "
            f"{len(schedules) - 1} boundaries, got {len(boundaries)})")
    return _Sequence(schedules, boundaries)


class _PerEpoch(Schedule):
    _name, _fields = "per_epoch", ("schedule", "steps_per_epoch")

    def __init__(self, schedule, steps_per_epoch):
        self.schedule, self.steps_per_epoch = schedule, steps_per_epoch

    def value(self, t):
        return self.schedule(t // self.steps_per_epoch)


def per_epoch(schedule: Callable[[int], float], steps_per_epoch: int) -> Schedule:
    r"""Evaluate ``schedule`` on the epoch index while stepping once per minibatch.

    .. math:: \eta_t = s\big(\lfloor t / n \rfloor\big), \qquad n = \text{steps\_per\_epoch}

    The rate is constant within an epoch. This gives the epoch-based forms with a
    per-update scheduler: :math:`\eta_e = \eta_0 d^{\lfloor e / e_d \rfloor}` is
    ``per_epoch(step_decay(eta0, e_d, d), n)`` and the :math:`1/t` decay counted in epochs,
    :math:`\eta_e = \eta_0 / (1 + k e)`, is ``per_epoch(inverse_time(eta0, k), n)``.

    torch: the wrapped scheduler stepped once per epoch instead of once per batch.

    Explained in: book/schedules.md

    >>> s = per_epoch(exponential(1.0, gamma=0.5), steps_per_epoch=3)
    >>> [s(t) for t in range(7)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    """
    return _PerEpoch(_callable("schedule", schedule),
                     check_int("steps_per_epoch", steps_per_epoch, low=1))


# --------------------------------------------------------------------------- range test


def range_test(recipe: Callable, lr_min: float, lr_max: float, steps: int, *, seed: int = 0,
               beta: float = 0.8) -> tuple[list[float], list[float]]:
    r"""A learning-rate range test: one short run whose rate grows geometrically.

    ``recipe(seed)`` builds the experiment and returns ``(model, optimizer, loss_fn, batches)``:
    ``batches`` is a list of ``(inputs, targets)`` pairs, and update :math:`t` (from 0) uses
    ``batches[t % len(batches)]``. Update :math:`t` sets every parameter group's rate to

    .. math:: \eta_t = \eta_{min} \Big(\frac{\eta_{max}}{\eta_{min}}\Big)^{t / (N - 1)},

    computes the loss of its batch, records it, and takes the optimizer's step, so the first
    update uses :math:`\eta_{min}` and the last (:math:`t = N - 1`) :math:`\eta_{max}`. All
    :math:`N` = ``steps`` updates are made, whatever the loss does. The recorded losses
    :math:`\ell_t` are smoothed by a moving average with Adam's bias correction,

    .. math:: a_t = \beta a_{t-1} + (1 - \beta)\, \ell_t,\quad a_{-1} = 0, \qquad
              \bar\ell_t = \frac{a_t}{1 - \beta^{t+1}}.

    Returns ``(lrs, smoothed)``, two lists of ``steps`` Python floats: the curve to plot,
    smoothed loss against rate on a log axis. It is a sketch for choosing an order of
    magnitude (Smith, 2017, "Cyclical learning rates for training neural networks"), not a
    rate: the minimum of the curve moves with the data order, the smoothing and the batch size.

    torch: no built-in (fastai's ``lr_find`` and ``torch-lr-finder`` stop early when the loss
    explodes; this one does not).

    Explained in: book/schedules.md

    >>> def recipe(seed):  # one weight, loss w**2 / 2: each update multiplies w by 1 - lr
    ...     w = torch.nn.Parameter(torch.ones((), dtype=torch.float64))
    ...     return (lambda x: w * x), torch.optim.SGD([w], lr=0.0), \
    ...         (lambda out, y: (out - y) ** 2 / 2), [(torch.tensor(1.0), torch.tensor(0.0))]
    >>> lrs, smooth = range_test(recipe, 0.01, 1.0, steps=3, beta=0.5)
    >>> [round(v, 4) for v in lrs], [round(v, 4) for v in smooth]
    ([0.01, 0.1, 1.0], [0.5, 0.4934, 0.4383])
    """
    if not callable(recipe):
        raise TypeError(f"expected recipe to be a callable seed -> (model, optimizer, loss_fn, "
                        f"batches), got {type(recipe).__name__}")
    lr_min, lr_max = _rate("lr_min", lr_min), _rate("lr_max", lr_max)
    if lr_max <= lr_min:
        raise ValueError(f"Invalid lr_max: {lr_max} (must be > lr_min={lr_min})")
    steps = check_int("steps", steps, low=2)
    beta = _real("beta", beta, low=0.0, high=1.0, high_open=True)
    model, optimizer, loss_fn, batches = recipe(seed)
    batches = list(batches)
    if not batches:
        raise ValueError("Invalid recipe: it returned no batches")
    lrs, smoothed, average = [], [], 0.0
    for t in range(steps):
        lr = lr_min * (lr_max / lr_min) ** (t / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = batches[t % len(batches)]
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        average = beta * average + (1 - beta) * loss.item()
        lrs.append(lr)
        smoothed.append(average / (1 - beta ** (t + 1)))
    return lrs, smoothed


# --------------------------------------------------------------------------- tables and torch


def lr_at(schedule: Callable[[int], float], steps) -> np.ndarray:
    """The schedule's values as a float64 array, for plots and tables.

    ``steps`` is a number of steps ``n`` (giving steps ``0 .. n-1``) or an iterable of steps.

    Explained in: book/schedules.md

    >>> lr_at(step_decay(1.0, 2, 0.5), 5)
    array([1.  , 1.  , 0.5 , 0.5 , 0.25])
    >>> lr_at(constant(0.1), [0, 10]).tolist()
    [0.1, 0.1]
    """
    _callable("schedule", schedule)
    if isinstance(steps, numbers.Integral) and not isinstance(steps, bool):
        steps = range(check_int("steps", steps, low=0))
    elif isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
        raise TypeError(f"expected steps to be an int or an iterable of ints, "
                        f"got {type(steps).__name__}")
    return np.array([schedule(step) for step in steps], dtype=np.float64)


class _RelativeToBase:
    """``LambdaLR``'s multiplier form of a schedule: ``schedule(t) / base_lr``."""

    def __init__(self, schedule, base_lr):
        self.schedule, self.base_lr = schedule, base_lr

    def __call__(self, t):
        return self.schedule(t) / self.base_lr


class _ScheduleLambdaLR(torch.optim.lr_scheduler.LambdaLR):
    """A ``LambdaLR`` whose rates are the schedules' values themselves.

    ``LambdaLR`` sets ``base_lr * lambda(t)``; with ``lambda = schedule / base_lr`` that is
    ``schedule(t)`` only up to one rounding (about one value in ten is off by an ulp), so the
    rates are taken from the schedules directly. The multipliers stay available in
    ``lr_lambdas`` for code that reads them.
    """

    def get_lr(self):
        return [fn.schedule(self.last_epoch) for fn in self.lr_lambdas]

    def state_dict(self):
        # The schedules are code, not state: leave them out so that a checkpoint holds only
        # plain numbers and loads with ``torch.load(..., weights_only=True)``.
        state = super().state_dict()
        state["lr_lambdas"] = [None] * len(self.lr_lambdas)
        return state


def to_lambda_lr(optimizer: torch.optim.Optimizer, schedule) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``torch.optim.lr_scheduler.LambdaLR`` that sets each group's rate to ``schedule(step)``.

    ``schedule`` is one schedule for every parameter group (all groups then get the same rate),
    or a list with one schedule per group. After ``k`` calls of ``scheduler.step()`` the groups'
    ``lr`` equals ``schedule(k)`` exactly; as with every torch scheduler, call
    ``optimizer.step()`` first and ``scheduler.step()`` after it. Step it once per minibatch for
    a per-step schedule, or once per epoch to feed it epoch indices.

    ``LambdaLR`` scales each group's initial learning rate by a multiplier, so the multiplier
    is ``schedule(t) / initial_lr``; a group whose initial lr is 0 is refused. ``state_dict``
    holds the step count but not the schedules: rebuild the scheduler with the same schedule,
    then load the state.

    Explained in: book/schedules.md

    >>> p = torch.nn.Parameter(torch.zeros(1))
    >>> opt = torch.optim.SGD([p], lr=1.0)
    >>> sched = to_lambda_lr(opt, step_decay(0.1, step_size=2, gamma=0.5))
    >>> lrs = []
    >>> for _ in range(4):
    ...     lrs.append(opt.param_groups[0]["lr"])
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [0.1, 0.1, 0.05, 0.05]
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"expected optimizer to be a torch.optim.Optimizer, "
                        f"got {type(optimizer).__name__}")
    groups = optimizer.param_groups
    if isinstance(schedule, (list, tuple)):
        if len(schedule) != len(groups):
            raise ValueError(f"Invalid schedule: a list of {len(schedule)} schedules for "
                             f"{len(groups)} parameter groups (need one per group)")
        schedules = [_callable(f"schedule[{i}]", s) for i, s in enumerate(schedule)]
    else:
        schedules = [_callable("schedule", schedule)] * len(groups)
    lambdas = []
    for i, (group, sched) in enumerate(zip(groups, schedules)):
        # LambdaLR's base is "initial_lr" when a scheduler has already run on this optimizer.
        base = group.get("initial_lr", group["lr"])
        base = float(base) if isinstance(base, torch.Tensor) else base
        if base == 0:
            raise ValueError(
                f"Invalid learning rate in param_groups[{i}]: {base} (LambdaLR scales the "
                "initial lr by schedule(t) / initial lr, so the initial lr must be nonzero)")
        lambdas.append(_RelativeToBase(sched, base))
    return _ScheduleLambdaLR(optimizer, lambdas)
