"""Known mistakes of the learning-rate schedules of assignment 05 (step_decay, exponential,
inverse_time, linear, cosine, warmup, polynomial, inverse_sqrt, cosine_restarts, one_cycle) and
of its learning-rate range test, written against the definitions of
:mod:`nnbolts.schedules`.

Each variant is a *factory*: it takes the reference schedule's hyperparameters as keywords (the
fields of the nnbolts schedule object, so defaults are filled in) and returns the wrong
schedule, a plain function ``step -> lr``. ``applies`` says whether the variant can differ from
the reference at all for these hyperparameters (a forgotten ``final_lr`` cannot show when it is
0). Mistakes that are a plain shift of the steps or a constant factor are recognised for every
schedule by :func:`nnbolts.grading._schedules._diagnose` and are not repeated here.
"""

from __future__ import annotations

import math

from ._mistakes import Mistake


def _shape(fn):
    """A factory whose schedule is ``fn(t, **hp)``: the variants below only write the rate."""
    def factory(**hp):
        return lambda t: float(fn(t, **hp))
    return factory


# --------------------------------------------------------------------------------------------
# step_decay: lr * gamma ** (t // step_size)
# --------------------------------------------------------------------------------------------

def _step_decay() -> list[Mistake]:
    def long_periods(**hp):
        return hp["step_size"] > 1

    return [
        Mistake("the decay is continuous instead of a staircase",
                "the exponent is the number of *completed* periods, an integer (floor "
                "division)",
                _shape(lambda t, lr, step_size, gamma, **_: lr * gamma ** (t / step_size)),
                applies=long_periods),
        Mistake("the exponent is rounded up (ceil) instead of down",
                "the rate keeps its value for step_size whole steps: the exponent is "
                "⌊t / step_size⌋ (floor division //), so step 1 still uses lr",
                _shape(lambda t, lr, step_size, gamma, **_:
                       lr * gamma ** math.ceil(t / step_size)),
                applies=long_periods),
        Mistake("the exponent is step % step_size (a remainder) instead of step // step_size",
                "the remainder starts again at 0 in every period, so the rate jumps back up; "
                "the exponent counts the completed periods",
                _shape(lambda t, lr, step_size, gamma, **_: lr * gamma ** (t % step_size)),
                applies=long_periods),
        Mistake("the rate decays at every step instead of every step_size steps",
                "divide the step by step_size (floor division) before using it as the exponent",
                _shape(lambda t, lr, gamma, **_: lr * gamma ** t), applies=long_periods),
    ]


# --------------------------------------------------------------------------------------------
# exponential: lr * gamma ** t
# --------------------------------------------------------------------------------------------

def _exponential() -> list[Mistake]:
    return [
        Mistake("γ·t instead of γᵗ (the step multiplies instead of being the exponent)",
                "exponential decay multiplies the rate by γ once per step: η₀·γᵗ",
                _shape(lambda t, lr, gamma, **_: lr * gamma * t)),
        Mistake("γ used as the rate k of η₀·e^(−kt)",
                "gamma is the factor per step, η₀·γᵗ; the continuous form η₀·e^(−kt) is the "
                "same curve with γ = e^(−k)",
                _shape(lambda t, lr, gamma, **_: lr * math.exp(-gamma * t))),
        Mistake("the factor per step is 1 − γ instead of γ",
                "gamma is what the rate is multiplied by at every step (0.99 keeps 99 %), not "
                "the fraction taken off",
                _shape(lambda t, lr, gamma, **_: lr * (1 - gamma) ** t),
                applies=lambda **hp: hp["gamma"] != 0.5),
    ]


# --------------------------------------------------------------------------------------------
# inverse_time: lr / (1 + decay_rate * t / decay_steps)
# --------------------------------------------------------------------------------------------

def _inverse_time() -> list[Mistake]:
    return [
        Mistake("the decay term k·t / n is computed with integer division (//)",
                "use true division /: the 1/t decay changes a little at every step, not in "
                "jumps",
                _shape(lambda t, lr, decay_rate, decay_steps, **_:
                       lr / (1 + decay_rate * t // decay_steps))),
        Mistake("t // decay_steps (a staircase) instead of t / decay_steps",
                "use true division /: η₀ / (1 + k·t / n) decays at every step",
                _shape(lambda t, lr, decay_rate, decay_steps, **_:
                       lr / (1 + decay_rate * (t // decay_steps))),
                applies=lambda **hp: hp["decay_steps"] > 1),
        Mistake("decay_steps is ignored (k·t instead of k·t / n)",
                "the step is measured in units of decay_steps: η₀ / (1 + k·t / n)",
                _shape(lambda t, lr, decay_rate, **_: lr / (1 + decay_rate * t)),
                applies=lambda **hp: hp["decay_steps"] != 1),
        Mistake("decay_rate and decay_steps swapped",
                "k = decay_rate multiplies the step and n = decay_steps divides it: "
                "η₀ / (1 + k·t / n)",
                _shape(lambda t, lr, decay_rate, decay_steps, **_:
                       lr / (1 + decay_steps * t / decay_rate)),
                applies=lambda **hp: hp["decay_rate"] != hp["decay_steps"]),
    ]


# --------------------------------------------------------------------------------------------
# linear: (1 - a) * lr + a * final_lr with a = min(t, total_steps) / total_steps
# --------------------------------------------------------------------------------------------

def _interpolate(lr, final_lr, alpha):
    return (1 - alpha) * lr + alpha * final_lr


def _linear() -> list[Mistake]:
    def moves(**hp):
        return hp["lr"] != hp["final_lr"]

    return [
        Mistake("linear never reaches final_lr: it stops one step short",
                "α = min(t, τ)/τ reaches 1 at step τ = total_steps, and from there on the rate "
                "is final_lr",
                _shape(lambda t, lr, final_lr, total_steps, **_: _interpolate(
                    lr, final_lr, min(t, total_steps - 1) / total_steps)),
                applies=moves),
        Mistake("linear reaches final_lr at step total_steps − 1 instead of total_steps",
                "the rate is lr at step 0 and final_lr at step τ: α = min(t, τ)/τ",
                _shape(lambda t, lr, final_lr, total_steps, **_: _interpolate(
                    lr, final_lr, min(t, total_steps - 1) / (total_steps - 1))),
                applies=lambda **hp: moves(**hp) and hp["total_steps"] > 1),
        Mistake("linear keeps going past total_steps instead of holding final_lr",
                "clamp the step, α = min(t, τ)/τ, so that the rate stays at final_lr after "
                "step τ",
                _shape(lambda t, lr, final_lr, total_steps, **_: _interpolate(
                    lr, final_lr, t / total_steps)),
                applies=moves),
        Mistake("α is computed with integer division (//), so it stays 0 until total_steps",
                "use true division /: α = min(t, τ)/τ grows from 0 to 1 in steps of 1/τ",
                _shape(lambda t, lr, final_lr, total_steps, **_: _interpolate(
                    lr, final_lr, min(t, total_steps) // total_steps)),
                applies=lambda **hp: moves(**hp) and hp["total_steps"] > 1),
        Mistake("lr and final_lr are swapped in the interpolation",
                "at step 0 the rate is lr: η = (1 − α)·η₀ + α·η_τ",
                _shape(lambda t, lr, final_lr, total_steps, **_: _interpolate(
                    final_lr, lr, min(t, total_steps) / total_steps)),
                applies=moves),
        Mistake("the rate is clamped with max(…, final_lr), which fails when final_lr > lr",
                "final_lr may be larger than lr (a ramp up): clamp the step, α = min(t, τ)/τ, "
                "not the rate",
                _shape(lambda t, lr, final_lr, total_steps, **_: max(_interpolate(
                    lr, final_lr, t / total_steps), final_lr)),
                applies=lambda **hp: hp["final_lr"] > hp["lr"]),
    ]


# --------------------------------------------------------------------------------------------
# cosine: final_lr + (lr - final_lr) * (1 + cos(pi * min(t, T) / T)) / 2
# --------------------------------------------------------------------------------------------

def _cosine_rate(lr, final_lr, angle, half=True):
    return final_lr + (lr - final_lr) * (1 + math.cos(angle)) / (2 if half else 1)


def _cosine() -> list[Mistake]:
    def has_floor(**hp):
        return hp["final_lr"] != 0

    return [
        Mistake("the cosine is stretched over 2·total_steps (π·t / 2T): it only gets halfway "
                "down",
                "half a cosine wave over total_steps: cos(π·min(t, T)/T) goes from 1 at step 0 "
                "to −1 at step T",
                _shape(lambda t, lr, total_steps, final_lr, **_: _cosine_rate(
                    lr, final_lr, math.pi * min(t, total_steps) / (2 * total_steps)))),
        Mistake("a full cosine wave (2π·t / T) instead of half a wave: the rate comes back up "
                "to lr",
                "cos(π·min(t, T)/T) goes from 1 at step 0 to −1 at step T",
                _shape(lambda t, lr, total_steps, final_lr, **_: _cosine_rate(
                    lr, final_lr, 2 * math.pi * min(t, total_steps) / total_steps))),
        Mistake("final_lr is ignored (the rate anneals to 0)",
                "the rate anneals to the floor: η_T + (η₀ − η_T)·(1 + cos(π·min(t, T)/T))/2",
                _shape(lambda t, lr, total_steps, **_: _cosine_rate(
                    lr, 0.0, math.pi * min(t, total_steps) / total_steps)),
                applies=has_floor),
        Mistake("the cosine term is scaled by lr instead of lr − final_lr",
                "the rate goes from η₀ down to η_T: η_T + (η₀ − η_T)·(1 + cos(π·min(t, T)/T))/2",
                _shape(lambda t, lr, total_steps, final_lr, **_: final_lr + _cosine_rate(
                    lr, 0.0, math.pi * min(t, total_steps) / total_steps)),
                applies=has_floor),
        Mistake("the rate climbs back up after total_steps (the step is not clamped)",
                "use min(t, T): after step T the rate stays at final_lr (torch's "
                "CosineAnnealingLR climbs back up, this schedule does not)",
                _shape(lambda t, lr, total_steps, final_lr, **_: _cosine_rate(
                    lr, final_lr, math.pi * t / total_steps))),
        Mistake("the factor ½ is missing: (1 + cos) goes from 2 to 0",
                "(1 + cos(π·min(t, T)/T))/2 goes from 1 at step 0 to 0 at step T",
                _shape(lambda t, lr, total_steps, final_lr, **_: _cosine_rate(
                    lr, final_lr, math.pi * min(t, total_steps) / total_steps, half=False))),
        Mistake("min(t, T) // T: the cosine's argument is computed with integer division, so "
                "the rate stays at lr until total_steps",
                "use true division /: the argument π·min(t, T)/T grows smoothly from 0 to π",
                _shape(lambda t, lr, total_steps, final_lr, **_: _cosine_rate(
                    lr, final_lr, math.pi * (min(t, total_steps) // total_steps)))),
        Mistake("π is missing from the cosine's argument: cos(t / T) instead of cos(π·t / T)",
                "the argument runs from 0 to π over total_steps, so the cosine goes from 1 to "
                "−1 and the rate from lr to final_lr",
                _shape(lambda t, lr, total_steps, final_lr, **_: _cosine_rate(
                    lr, final_lr, min(t, total_steps) / total_steps))),
        Mistake("π·t // T: the cosine's argument is rounded down by integer division",
                "use true division /: the argument π·min(t, T)/T grows smoothly from 0 to π",
                _shape(lambda t, lr, total_steps, final_lr, **_: _cosine_rate(
                    lr, final_lr, math.pi * min(t, total_steps) // total_steps))),
    ]


# --------------------------------------------------------------------------------------------
# warmup: s(0) * (f + (1 - f) * t / w) for t < w, then s(t - w)
# --------------------------------------------------------------------------------------------

def _warmed(ramp, after=lambda s, t, w: s(t - w)):
    """A warmup variant: ``ramp(s, t, w, f)`` below ``w`` steps, ``after(s, t, w)`` from
    there on (by default the reference's shifted clock)."""
    def factory(*, schedule, warmup_steps, start_factor=0.0, **_):
        def rate(t):
            if t >= warmup_steps:
                return float(after(schedule, t, warmup_steps))
            return float(ramp(schedule, t, warmup_steps, start_factor))
        return rate
    return factory


def _ramp(s, t, w, f):
    return s(0) * (f + (1 - f) * t / w)


def _warmup() -> list[Mistake]:
    def has_start(**hp):
        return hp["start_factor"] > 0

    return [
        Mistake("the warmup ramp is one step ahead (t + 1 instead of t)",
                "step counts completed updates: the first update uses start_factor·s(0) (0 by "
                "default) and the ramp reaches s(0) at step warmup_steps",
                _warmed(lambda s, t, w, f: _ramp(s, t + 1, w, f))),
        Mistake("the wrapped schedule's clock is not restarted: s(t) instead of "
                "s(t − warmup_steps)",
                "after the warmup the wrapped schedule starts from its own step 0: s(t − w)",
                _warmed(_ramp, after=lambda s, t, w: s(t))),
        Mistake("the ramp multiplies s(t) instead of s(0)",
                "during the warmup the rate climbs in a straight line to s(0), the value the "
                "wrapped schedule starts from",
                _warmed(lambda s, t, w, f: s(t) * (f + (1 - f) * t / w))),
        Mistake("start_factor is ignored (the ramp starts at 0)",
                "the ramp starts at start_factor·s(0): s(0)·(f + (1 − f)·t / w)",
                _warmed(lambda s, t, w, f: _ramp(s, t, w, 0.0)), applies=has_start),
        Mistake("the ramp's slope ignores start_factor: f + t / w instead of f + (1 − f)·t / w",
                "the ramp must end at s(0) at step warmup_steps: s(0)·(f + (1 − f)·t / w)",
                _warmed(lambda s, t, w, f: s(0) * (f + t / w)), applies=has_start),
        Mistake("the ramp reaches s(0) one step early: t / (warmup_steps − 1) instead of "
                "t / warmup_steps",
                "the ramp ends at step warmup_steps, where the wrapped schedule takes over at "
                "s(0): s(0)·(f + (1 − f)·t / w)",
                _warmed(lambda s, t, w, f: s(0) * (f + (1 - f) * t / (w - 1))),
                applies=lambda **hp: hp["warmup_steps"] > 1),
        Mistake("t / warmup_steps is computed with integer division (//)",
                "use true division /: the rate climbs a little at every warmup step",
                _warmed(lambda s, t, w, f: s(0) * (f + (1 - f) * (t // w))),
                applies=lambda **hp: hp["warmup_steps"] > 1),
    ]


# --------------------------------------------------------------------------------------------
# polynomial: (lr - final_lr) * (1 - min(t, T) / T) ** power + final_lr
# --------------------------------------------------------------------------------------------

def _polynomial() -> list[Mistake]:
    def has_floor(**hp):
        return hp["final_lr"] != 0

    return [
        Mistake("the power is applied to t / T instead of 1 − t / T",
                "the remaining fraction of the run, 1 − min(t, T)/T, is what is raised to the "
                "power: (η₀ − η_T)·(1 − min(t, T)/T)ᵖ + η_T",
                _shape(lambda t, lr, total_steps, final_lr, power, **_:
                       (lr - final_lr) * (1 - (min(t, total_steps) / total_steps) ** power)
                       + final_lr),
                applies=lambda **hp: hp["power"] != 1),
        Mistake("final_lr is ignored (the rate decays to 0)",
                "the rate decays to the floor: (η₀ − η_T)·(1 − min(t, T)/T)ᵖ + η_T",
                _shape(lambda t, lr, total_steps, power, **_:
                       lr * (1 - min(t, total_steps) / total_steps) ** power),
                applies=has_floor),
        Mistake("the decaying term is scaled by lr instead of lr − final_lr",
                "the rate goes from η₀ at step 0 down to η_T: (η₀ − η_T)·(1 − min(t, T)/T)ᵖ + η_T",
                _shape(lambda t, lr, total_steps, final_lr, power, **_:
                       lr * (1 - min(t, total_steps) / total_steps) ** power + final_lr),
                applies=has_floor),
        Mistake("the power is ignored (a linear decay)",
                "raise the remaining fraction 1 − min(t, T)/T to the power p",
                _shape(lambda t, lr, total_steps, final_lr, **_:
                       (lr - final_lr) * (1 - min(t, total_steps) / total_steps) + final_lr),
                applies=lambda **hp: hp["power"] != 1),
    ]


# --------------------------------------------------------------------------------------------
# inverse_sqrt: lr * sqrt(w / (t + w)) with w = max(warmup_steps, 1)
# --------------------------------------------------------------------------------------------

def _inverse_sqrt() -> list[Mistake]:
    def w1(warmup_steps):
        return max(warmup_steps, 1)

    return [
        Mistake("warmup_steps is ignored: η₀/√(t + 1) whatever the warmup",
                "after a warmup of w steps the decay is η₀·√(w / (t + w)) (with w = 1 when "
                "warmup_steps is 0)",
                _shape(lambda t, lr, **_: lr / math.sqrt(t + 1)),
                applies=lambda **hp: hp["warmup_steps"] > 1),
        Mistake("the square root is missing (a 1/t decay)",
                "the rate falls like 1/√t: η₀·√(w / (t + w))",
                _shape(lambda t, lr, warmup_steps, **_:
                       lr * w1(warmup_steps) / (t + w1(warmup_steps)))),
        Mistake("the fraction is upside down: the rate grows like √t",
                "η₀·√(w / (t + w)) starts at η₀ and falls",
                _shape(lambda t, lr, warmup_steps, **_:
                       lr * math.sqrt((t + w1(warmup_steps)) / w1(warmup_steps)))),
        Mistake("√(w / (t + 1)) instead of √(w / (t + w))",
                "the schedule must start at η₀: at step 0 the fraction w / (t + w) is 1",
                _shape(lambda t, lr, warmup_steps, **_:
                       lr * math.sqrt(w1(warmup_steps) / (t + 1))),
                applies=lambda **hp: hp["warmup_steps"] > 1),
    ]


# --------------------------------------------------------------------------------------------
# cosine_restarts: a cosine over T_i = T_0 * m ** i steps, restarted at lr
# --------------------------------------------------------------------------------------------

def _restarts(periods, span=lambda period: period):
    """A warm-restart variant: ``periods(T_0, m)`` yields the lengths of the periods, and the
    cosine of a period of length T runs over ``span(T)`` steps."""
    def factory(*, lr, first_period, period_mult, final_lr, **_):
        def rate(t):
            for period in periods(first_period, period_mult):
                if t < period:
                    return _cosine_rate(lr, final_lr, math.pi * t / span(period))
                t -= period
        return rate
    return factory


def _geometric_periods(first, mult):
    while True:
        yield first
        first *= mult


def _cosine_restarts() -> list[Mistake]:
    def grows(**hp):
        return hp["period_mult"] > 1

    return [
        Mistake("period_mult is ignored: every period lasts first_period steps",
                "each period is period_mult times longer than the one before: T_i = T_0·mⁱ",
                _restarts(lambda first, mult: _geometric_periods(first, 1)), applies=grows),
        Mistake("the periods grow linearly (T_0·(i + 1)) instead of geometrically (T_0·mⁱ)",
                "each period is period_mult times the one before: T_i = T_0·mⁱ",
                _restarts(lambda first, mult: (first * (i + 1) for i in range(10 ** 9))),
                applies=grows),
        Mistake("the period grows by period_mult steps instead of by a factor period_mult",
                "each period is period_mult times longer than the one before: T_i = T_0·mⁱ",
                _restarts(lambda first, mult: (first + i * mult for i in range(10 ** 9))),
                applies=grows),
        Mistake("each cosine reaches final_lr one step before its restart (π·t_cur / (T_i − 1))",
                "within a period of T_i steps the argument is π·t_cur / T_i: the rate comes "
                "close to final_lr but jumps back to lr at the restart before reaching it",
                _restarts(_geometric_periods, span=lambda period: period - 1),
                applies=lambda **hp: hp["first_period"] > 1),
        Mistake("final_lr is ignored (every cosine anneals to 0)",
                "the rate anneals to the floor: η_min + (η₀ − η_min)·(1 + cos(π·t_cur / T_i))/2",
                lambda **hp: _restarts(_geometric_periods)(**{**hp, "final_lr": 0.0}),
                applies=lambda **hp: hp["final_lr"] != 0),
    ]


# --------------------------------------------------------------------------------------------
# one_cycle (two phases): up from max_lr / div_factor to max_lr until step u = pct_start·T − 1,
# then down to max_lr / div_factor / final_div_factor at step T − 1
# --------------------------------------------------------------------------------------------

def _cycle(*, up_end=lambda pct, total: pct * total - 1, last=lambda total: total - 1,
           low=lambda max_lr, div, final_div: max_lr / div / final_div, shape=None):
    """A one-cycle variant with its own climb's end ``up_end(pct_start, T)``, last step
    ``last(T)``, final rate ``low(max_lr, div_factor, final_div_factor)`` or phase shape
    ``shape(lr_from, lr_to, fraction, anneal)``."""
    def factory(*, max_lr, total_steps, pct_start, div_factor, final_div_factor,
                anneal="cos", **_):
        phase = shape if shape is not None else _anneal_of
        start, end = max_lr / div_factor, low(max_lr, div_factor, final_div_factor)
        u, z = up_end(pct_start, total_steps), last(total_steps)

        def rate(t):
            if t >= z:
                return end
            if t <= u:
                return phase(start, max_lr, t / u, anneal)
            return phase(max_lr, end, (t - u) / (z - u), anneal)
        return rate
    return factory


def _anneal_of(lr_from, lr_to, frac, anneal):
    if anneal == "linear":
        return lr_from + (lr_to - lr_from) * frac
    return lr_to + (lr_from - lr_to) / 2 * (1 + math.cos(math.pi * frac))


def _one_cycle() -> list[Mistake]:
    def cosine(**hp):
        return hp.get("anneal", "cos") == "cos" and not hp.get("three_phase", False)

    def two_phase(**hp):
        return not hp.get("three_phase", False)

    return [
        Mistake("the climb ends at step pct_start·T instead of pct_start·T − 1",
                "the peak is at step u = pct_start·total_steps − 1 (torch's OneCycleLR)",
                _cycle(up_end=lambda pct, total: pct * total), applies=two_phase),
        Mistake("the descent ends at step total_steps instead of total_steps − 1",
                "the last step of the cycle, total_steps − 1, already uses the final rate",
                _cycle(last=lambda total: total), applies=two_phase),
        Mistake("the final rate is max_lr / final_div_factor instead of "
                "max_lr / div_factor / final_div_factor",
                "the descent ends final_div_factor times below the *starting* rate "
                "max_lr / div_factor",
                _cycle(low=lambda max_lr, div, final_div: max_lr / final_div),
                applies=two_phase),
        Mistake("the phases are straight lines instead of half cosines",
                "each phase goes from its start to its end by a half cosine: "
                "η_to + (η_from − η_to)·(1 + cos(π·p))/2",
                _cycle(shape=lambda lr_from, lr_to, frac, _: lr_from + (lr_to - lr_from) * frac),
                applies=cosine),
        Mistake("the descent ends at max_lr / div_factor (the starting rate) instead of far "
                "below it",
                "the descent goes final_div_factor times below the starting rate",
                _cycle(low=lambda max_lr, div, final_div: max_lr / div), applies=two_phase),
    ]


# --------------------------------------------------------------------------------------------
# range_test(recipe, lr_min, lr_max, steps, *, seed, beta): geometric rates, smoothed losses
# --------------------------------------------------------------------------------------------

def _geometric(lr_min, lr_max, steps, t):
    return lr_min * (lr_max / lr_min) ** (t / (steps - 1))


def _corrected(losses, beta):
    average, out = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return out


def _range_variant(rate=_geometric, smooth=_corrected):
    """A range-test variant: ``rate(lr_min, lr_max, steps, t)`` is the rate of update t and
    ``smooth(losses, beta)`` the curve returned; the run is the reference's."""
    def run(recipe, lr_min, lr_max, steps, *, seed=0, beta=0.8):
        model, optimizer, loss_fn, batches = recipe(seed)
        batches = list(batches)
        lrs, losses = [], []
        for t in range(steps):
            lr = rate(lr_min, lr_max, steps, t)
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs, targets = batches[t % len(batches)]
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            lrs.append(lr)
            losses.append(loss.item())
        return lrs, smooth(losses, beta)
    return run


def _uncorrected(losses, beta):
    average, out = 0.0, []
    for loss in losses:
        average = beta * average + (1 - beta) * loss
        out.append(average)
    return out


def _range_test() -> list[Mistake]:
    return [
        Mistake("the rates are spaced linearly instead of geometrically",
                "the rate is multiplied by the same factor at every update: "
                "lr_min·(lr_max / lr_min)^(t / (steps − 1))",
                _range_variant(rate=lambda lo, hi, n, t: lo + (hi - lo) * t / (n - 1))),
        Mistake("the exponent is t / steps: the last update never reaches lr_max",
                "the first update uses lr_min and the last one (t = steps − 1) lr_max: "
                "the exponent is t / (steps − 1)",
                _range_variant(rate=lambda lo, hi, n, t: lo * (hi / lo) ** (t / n))),
        Mistake("the moving average is not bias-corrected",
                "a moving average that starts from 0 is too small in its first steps: divide "
                "it by 1 − betaᵗ⁺¹",
                _range_variant(smooth=_uncorrected)),
        Mistake("the losses are not smoothed",
                "return the bias-corrected moving average of the losses, not the losses",
                _range_variant(smooth=lambda losses, beta: list(losses))),
        Mistake("beta and 1 − beta are swapped in the moving average",
                "beta is the weight of the old average: a = beta·a + (1 − beta)·loss",
                _range_variant(smooth=lambda losses, beta: _corrected(losses, 1 - beta))),
    ]


def schedule_mistakes():
    """``[(name of the nnbolts.schedules factory, [Mistake, ...]), ...]`` for the catalogue."""
    return [("step_decay", _step_decay()), ("exponential", _exponential()),
            ("inverse_time", _inverse_time()), ("linear", _linear()), ("cosine", _cosine()),
            ("warmup", _warmup()), ("polynomial", _polynomial()),
            ("inverse_sqrt", _inverse_sqrt()), ("cosine_restarts", _cosine_restarts()),
            ("one_cycle", _one_cycle()), ("range_test", _range_test())]
