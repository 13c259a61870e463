"""Grading a learning-rate schedule (a callable ``step -> lr``) against nnbolts'."""

from __future__ import annotations

import nnbolts.schedules as S

from . import _remote
from ._compare import compare_lists, compare_numbers, fmt_number
from ._engine import DEFAULT_BUDGET, DEFAULT_TIMEOUT, Session, Where, describe_call, fail
from ._mistakes import Mistake, known_mistakes

_STEP_HINT = ("step counts completed updates, so the first update uses schedule(0); check "
              "where the step count enters the formula")


def _diagnose(expected: list, got: list, rtol: float, atol: float) -> list[tuple[str, str]]:
    """Mistakes any schedule can make, read off the two sequences of rates of steps
    0, 1, 2, ... (name, hint): a shift by one step, a constant factor."""
    found = []
    n = len(expected)
    if n > 2 and compare_lists(expected[1:], got[:-1], rtol, atol)[0] is None:
        found.append(("off by one step: schedule(t) gives the rate of step t + 1", _STEP_HINT))
    if n > 2 and compare_lists(expected[:-1], got[1:], rtol, atol)[0] is None:
        found.append(("off by one step: schedule(t) gives the rate of step t − 1", _STEP_HINT))
    if expected and expected[0] and got and all(e for e in expected):
        ratio = got[0] / expected[0]
        if ratio != 1 and compare_lists([e * ratio for e in expected], got, rtol,
                                        atol)[0] is None:
            found.append((f"every rate is {fmt_number(ratio)} times the expected one",
                          "return the learning rate itself (not a factor of it), starting "
                          "from the rate the schedule was given"))
    return found


def _catalogue(reference, extra) -> list[Mistake]:
    """The known mistakes for ``reference`` (a factory of nnbolts.schedules, or a schedule
    object that one built) followed by the hidden test's own ``extra`` ones."""
    found = known_mistakes(reference)
    if not found and isinstance(reference, S.Schedule):
        factory = getattr(S, reference._name, None)
        if factory is not None:
            found = known_mistakes(factory)
    return found + list(extra)


def _hyperparameters(ref, config) -> dict:
    """What a catalogued variant is built from: the fields of the reference schedule object
    (defaults filled in), else the configuration the hidden test gave."""
    if isinstance(ref, S.Schedule):
        return dict(ref._items())
    return dict(config or {})


def _matching(catalogue, hp: dict, step_list, got, rtol, atol) -> list[tuple[str, str]]:
    """The catalogued variants whose rates at ``step_list`` all equal the student's."""
    found = []
    for mistake in catalogue:
        try:
            if mistake.applies is not None and not mistake.applies(**hp):
                continue
            variant = mistake.fn(**hp)
            rates = [float(variant(t)) for t in step_list]
        except Exception:  # a variant undefined for these hyperparameters: not this one
            continue
        if compare_lists(rates, got, rtol, atol)[0] is None:
            found.append((mistake.name, mistake.hint))
    return found


def check_schedule(student, reference, *, steps=100, configs=None, name=None, rtol=1e-6,
                   atol=1e-12, timeout=DEFAULT_TIMEOUT, budget=DEFAULT_BUDGET, mistakes=()) -> None:
    """Grade a learning-rate schedule: ``schedule(step) -> lr`` for ``step`` in
    ``range(steps)`` (or the given iterable of steps) against the reference's rates.

    Without ``configs``, ``student`` and ``reference`` are schedules (callables). With
    ``configs`` (a list of keyword dicts) they are *factories* — ``cosine(lr, total_steps)`` —
    and every configuration builds one schedule on each side.

    Rates must be Python numbers (a tensor is refused) and match within ``rtol``/``atol``
    (default 1e-6 relative: schedules are float64 Python arithmetic, torch's schedulers
    float32-accurate). The schedule must be a pure function of the step: it is also evaluated
    in reverse order and must give the same rates (a schedule that counts its own calls fails).
    The message recognises a schedule off by one step (the first update uses ``schedule(0)``)
    and one off by a constant factor (a multiplier instead of a rate) for any schedule, and the
    catalogued mistakes of nnbolts' ``step_decay``, ``exponential``, ``inverse_time``,
    ``linear``, ``cosine`` and ``warmup`` (a staircase rounded up, ``γ·t`` for ``γᵗ``, a linear
    decay that overshoots ``total_steps``, a cosine that ignores ``final_lr``, a warmup that
    does not restart the wrapped schedule's clock, integer division, ...; see
    :func:`known_mistakes`), plus ``mistakes``: :class:`Mistake` objects whose ``fn`` takes the
    reference schedule's hyperparameters as keywords and returns the wrong schedule. Other
    arguments as in :func:`check_function`.

    Example hidden-test cell: ``check_schedule(cosine, nnbolts.schedules.cosine,
    configs=[dict(lr=0.1, total_steps=50)], steps=80)``
    """
    step_list = list(range(steps)) if isinstance(steps, int) else [int(s) for s in steps]
    label = name or getattr(reference, "__name__", None) or repr(reference)
    session = Session(label, timeout=timeout, budget=budget)
    catalogue = _catalogue(reference, mistakes)
    session.vet_student(student)
    pairs = []
    if configs is None:
        pairs.append(({}, reference, student))
    else:
        # every configuration's schedule built in one exchange when the factory is the kernel's
        made = session.student(lambda: student.calls([([], dict(c)) for c in configs]), Where(),
                               f"{label} for {len(configs)} configurations") if isinstance(
                                   student, _remote.RemoteCallable) and configs else None
        for k, config in enumerate(configs):
            ref = session.reference(reference, **config)
            call_text = describe_call(label, [], (), config)
            where = Where(extra=f"configuration {k + 1} of {len(configs)}")
            build = (lambda c=config: student(**c)) if made is None else (
                lambda c=config, k=k: made[k]([], dict(c)))
            built = session.student(build, where, call_text)
            if not callable(built):
                fail(label, f"returned {type(built).__name__}, not a schedule (a callable "
                     "step -> lr)", where, [f"call: {call_text}"])
            session.vet_student(built, label)
            pairs.append((config, ref, built))
    for k, (config, ref, stu) in enumerate(pairs):
        _compare_schedule(session, label, config, ref, stu, step_list, rtol, atol, k,
                          len(pairs), catalogue)


def _compare_schedule(session, label, config, ref, stu, step_list, rtol, atol, k, n,
                      catalogue=()):
    made = describe_call(label, [], (), config) if config else label
    expected = [float(session.reference(ref, t)) for t in step_list]
    got = []
    backwards = list(reversed(step_list))
    # the steps in order, then in reverse order (the purity check below), in one exchange
    calls = _calls(session, stu, step_list + backwards, made if config else "schedule")
    calls, calls_backwards = calls[:len(step_list)], calls[len(step_list):]
    for i, t in enumerate(step_list):
        where = Where(extra=f"step {t}" + (f", configuration {k + 1} of {n}" if n > 1 else ""))
        call_text = f"{made}({t})" if config else f"schedule({t})"
        value = session.student(calls[i], where, call_text)
        mismatch = compare_numbers(expected[len(got)], value, rtol, atol)
        if mismatch is not None and mismatch.what == "type":
            fail(label, mismatch.text, where, [f"call: {call_text}"])
        got.append(float(value))
    first, bad, max_abs, max_rel = compare_lists(expected, got, rtol, atol)
    if first is not None:
        t = step_list[first]
        where = Where(extra=f"step {t}" + (f", configuration {k + 1} of {n}" if n > 1 else ""))
        diagnosed = _diagnose(expected, got, rtol, atol) if step_list == list(
            range(len(step_list))) else []
        diagnosed += _matching(catalogue, _hyperparameters(ref, config), step_list, got, rtol,
                               atol)
        lines = [f"schedule: {made}" if config else "",
                 f"first difference at step {t}: expected {fmt_number(expected[first])}, got "
                 f"{fmt_number(got[first])}",
                 f"{bad} of {len(got)} steps differ; max abs error {fmt_number(max_abs)}, max "
                 f"rel error {fmt_number(max_rel)} (tolerance rtol={rtol:.3g}, atol={atol:.3g})",
                 *[f"This looks like: {m} (hint: {h})" for m, h in diagnosed]]
        fail(label, "wrong learning rate", where, lines)
    again = []
    for i, t in enumerate(backwards):
        again.append(float(session.student(calls_backwards[i], Where(extra=f"step {t}"),
                                           f"schedule({t})")))
    again.reverse()
    first, _, _, _ = compare_lists(got, again, 0.0, 0.0, exact=True)
    if first is not None:
        t = step_list[first]
        fail(label, "is not a pure function of the step", Where(extra=f"step {t}"), [
            f"schedule({t}) gave {fmt_number(got[first])} when the steps were evaluated in "
            f"order and {fmt_number(again[first])} when evaluated in reverse order",
            "a schedule must compute the rate from its argument alone, without counting its "
            "own calls or keeping other state"])


def _calls(session, stu, steps, label):
    """One thunk per step. A schedule in the student's kernel is asked for all steps in one
    exchange (a thousand round trips would take seconds); a local one is called step by step."""
    if isinstance(stu, _remote.RemoteCallable):
        return session.student(lambda: stu.many([(t,) for t in steps]), Where(),
                               f"{label}(step) for {len(steps)} steps")
    return [lambda t=t: stu(t) for t in steps]
