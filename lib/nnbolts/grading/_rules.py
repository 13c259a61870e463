"""Grading an optimizer rule: a student's ``*_init``/``*_step`` pair against nnbolts' over
multi-step trajectories."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import nnbolts.optim as O

from . import _remote
from ._cases import Case, _devices_or_default
from ._compare import compare, first_change, tolerance
from ._engine import (
    DEFAULT_BUDGET,
    DEFAULT_TIMEOUT,
    Session,
    Where,
    _resolve_dtypes,
    clone_value,
    describe_call,
    describe_value,
    fail,
    mismatch_lines,
    mistake_lines,
)
from ._errors import StudentTimeout
from ._mistakes import Mistake, known_mistakes


@dataclass
class RuleSpec:
    """An optimizer rule as the grader knows it: the reference pair, which step keywords are
    also ``*_init`` keywords and the default hyperparameter grid."""

    init: Callable
    step: Callable
    init_keys: tuple[str, ...] = ()
    grid: list[dict] = field(default_factory=list)


RULES: dict[str, RuleSpec] = {
    # Each grid is chosen so that every catalogued mistake shows: dampening for the buffer's
    # start, a large ε against small gradients for ε's place, shrinking gradients for AMSGrad.
    "sgd": RuleSpec(O.sgd_init, O.sgd_step, (), [
        {"lr": 0.1},
        {"lr": 0.05, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.5},
        {"lr": 0.05, "momentum": 0.8, "nesterov": True},
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1},
    ]),
    "sgd_velocity": RuleSpec(O.sgd_velocity_init, O.sgd_velocity_step, (), [
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.5, "nesterov": True},
    ]),
    "adagrad": RuleSpec(O.adagrad_init, O.adagrad_step, (), [
        {"lr": 0.1},
        {"lr": 0.1, "lr_decay": 0.1},
        {"lr": 0.05, "eps": 0.1, "grad_scale": 0.3},
        {"lr": 0.1, "weight_decay": 0.1, "init": {"initial_accumulator_value": 0.5}},
    ]),
    "rmsprop": RuleSpec(O.rmsprop_init, O.rmsprop_step, ("momentum", "centered"), [
        {"lr": 0.01},
        {"lr": 0.01, "alpha": 0.9, "eps": 0.1, "grad_scale": 0.3},
        {"lr": 0.01, "momentum": 0.9},
        {"lr": 0.01, "centered": True},
        {"lr": 0.01, "weight_decay": 0.1},
    ]),
    "adadelta": RuleSpec(O.adadelta_init, O.adadelta_step, (), [
        {},
        {"lr": 0.5, "rho": 0.8, "eps": 1e-3},
        {"weight_decay": 0.1},
    ]),
    "adam": RuleSpec(O.adam_init, O.adam_step, ("amsgrad",), [
        {"lr": 0.01},
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 0.1, "grad_scale": 0.3},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.01, "betas": (0.9, 0.6), "amsgrad": True, "grad_decay": 0.6},
    ]),
    "adamw": RuleSpec(O.adamw_init, O.adamw_step, ("amsgrad",), [
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 0.1, "weight_decay": 0.05,
         "grad_scale": 0.3},
        {"lr": 0.01, "betas": (0.9, 0.6), "weight_decay": 0.1, "amsgrad": True,
         "grad_decay": 0.6},
    ]),
    "nadam": RuleSpec(O.nadam_init, O.nadam_step, (), [
        {"lr": 0.01},
        {"lr": 0.01, "betas": (0.8, 0.99), "momentum_decay": 0.01, "weight_decay": 0.1},
    ]),
    # Algorithm 8.6 of the Deep Learning book (grad: the gradient at the look-ahead point)
    "rmsprop_nesterov": RuleSpec(O.rmsprop_nesterov_init, O.rmsprop_nesterov_step, (), [
        {"lr": 0.01},
        {"lr": 0.01, "rho": 0.8, "momentum": 0.5, "eps": 0.1, "grad_scale": 0.3},
        {"lr": 0.05, "rho": 0.5, "momentum": 0.0},
    ]),
}

_RESERVED = ("init", "grad_scale", "grad_decay")
DEFAULT_SHAPES = ((5,), (3, 4), (2, 3, 2))


def _split(hp: dict, init_keys) -> tuple[dict, dict, float, float]:
    step_kw = {k: v for k, v in hp.items() if k not in _RESERVED}
    init_kw = dict(hp.get("init", {}))
    for key in init_keys:
        if key in step_kw:
            init_kw.setdefault(key, step_kw[key])
    return step_kw, init_kw, float(hp.get("grad_scale", 1.0)), float(hp.get("grad_decay", 1.0))


def _hp_text(step_kw: dict, init_kw: dict) -> str:
    parts = [f"{k}={v!r}" for k, v in step_kw.items()]
    parts += [f"init: {k}={v!r}" for k, v in init_kw.items() if k not in step_kw]
    return ", ".join(parts) if parts else "the defaults"


def check_rule(student_init, student_step, rule: str = "adam", hyperparams=None, *, steps=8,
               shapes=None, reference=None, devices=None, dtypes=None, seed=0,
               tolerance_scale=2.0, mistakes=(), timeout=DEFAULT_TIMEOUT,
               budget=DEFAULT_BUDGET) -> None:
    """Grade an optimizer rule: the student's ``init(param, **init_kw) -> state`` and
    ``step(param, grad, state, **hp) -> (new_param, new_state)`` against nnbolts' pair.

    For each hyperparameter set (``hyperparams``, default: the rule's grid in
    :data:`RULES`), device and dtype, both pairs start from the same random parameter and are
    fed the same random gradients for ``steps`` steps; after ``init`` and after every step the
    new parameter and *every* state entry (``step`` as a Python int, ``exp_avg``, ...) are
    compared, so an off-by-one step count or a bias correction that is off only later is
    caught. Each side follows its own trajectory; the student's inputs must not be modified
    (a pure step returns a new state). Keys whose value is ``None`` in the student's state
    count as absent.

    ``rule`` names the reference (``"sgd"``, ``"sgd_velocity"``, ``"adagrad"``, ``"rmsprop"``,
    ``"adadelta"``, ``"adam"``, ``"adamw"``, ``"nadam"``, ``"rmsprop_nesterov"``), or pass
    ``reference=(init, step)``.
    A hyperparameter dict holds step keywords plus, optionally, ``"init"`` (extra keywords
    for init only), ``"grad_scale"`` (gradient size, default 1) and ``"grad_decay"``
    (gradients shrink by this factor per step). Step keywords the rule's init also takes
    (``amsgrad``; RMSprop's ``momentum``, ``centered``) are passed to init too. ``shapes`` are
    used in turn (default (5,), (3, 4), (2, 3, 2)).

    When the student's trajectory equals a known wrong variant (no bias correction, ε inside
    the root, wrong sign, off-by-one step count, momentum buffer started at zero, L2 instead of
    decoupled decay, AMSGrad's maximum over the wrong tensor, ...) the message says which.
    Tolerances are :func:`tolerance` times ``tolerance_scale``; other arguments as in
    :func:`check_function`.

    Example hidden-test cell: ``check_rule(adam_init, adam_step, rule="adam")``
    """
    if reference is None:
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; expected one of {sorted(RULES)} or "
                             "reference=(init, step)")
        spec = RULES[rule]
    else:
        base = RULES.get(rule)
        spec = RuleSpec(reference[0], reference[1], base.init_keys if base else (),
                        base.grid if base else [{}])
    grid = [dict(h) for h in (hyperparams if hyperparams is not None else spec.grid)] or [{}]
    step_name = getattr(student_step, "__name__", None) or f"{rule}_step"
    init_name = getattr(student_init, "__name__", None) or f"{rule}_init"
    session = Session(step_name, timeout=timeout, budget=budget)
    catalogue = list(known_mistakes(spec.step if reference is None else rule)) + list(mistakes)
    shapes = list(shapes) if shapes else list(DEFAULT_SHAPES)
    session.vet_student(student_init, init_name)
    session.vet_student(student_step, step_name)
    runs = []
    for device in _devices_or_default(devices):
        for dtype in _resolve_dtypes(dtypes):
            for i, hp in enumerate(grid):
                case = Case(seed, i, device, dtype)
                step_kw, init_kw, scale, decay = _split(hp, spec.init_keys)
                shape = shapes[i % len(shapes)]
                runs.append(_Run(case, i, step_kw, init_kw, case.randn(*shape), [
                    case.randn(*shape, scale=scale * decay ** t) for t in range(steps)]))
    observed = _observe_runs(session, student_init, student_step, runs)
    for run, calls in zip(runs, observed):
        rtol, atol = tolerance(run.case.dtype, tolerance_scale)
        _trajectory(session, spec, student_init, student_step, init_name, step_name, run,
                    len(grid), steps, rtol, atol, catalogue, calls)


@dataclass
class _Run:
    """One trajectory of a rule check: its case, hyperparameter set and inputs."""

    case: Case
    index: int  # of the hyperparameter set
    step_kw: dict
    init_kw: dict
    param0: object  # a tensor
    grads: list


def _observe_runs(session, student_init, student_step, runs: list[_Run]) -> list:
    """Every run's init and steps made in the student's kernel in one exchange
    (``RemoteCallable.chains``): per run, one function per call, init's first. ``None`` for a
    run to be made on its own: every run of a local pair (the grader's tests), and every run
    when the exchange ran past one call's time limit (made run by run again, so that a limit is
    reported where it is exceeded)."""
    if not (isinstance(student_step, _remote.RemoteCallable)
            and isinstance(student_init, _remote.RemoteCallable)):
        return [None] * len(runs)
    token = _remote.DEADLINE.set(session._time_left())
    start = time.monotonic()
    try:
        observed = student_step.chains(
            [{"param": r.param0, "grads": r.grads, "kwargs": r.step_kw,
              "init_kwargs": r.init_kw} for r in runs], init=student_init)
    except StudentTimeout:
        return [None] * len(runs)
    finally:
        _remote.DEADLINE.reset(token)
    session.used += time.monotonic() - start
    return observed


def _trajectory(session, spec, student_init, student_step, init_name, step_name, run: _Run,
                n_hp, steps, rtol, atol, catalogue, calls=None):
    case, i, step_kw, init_kw = run.case, run.index, run.step_kw, run.init_kw
    param0, grads = run.param0, run.grads
    hp_text = _hp_text(step_kw, init_kw)

    # -- init ----------------------------------------------------------------------------
    where = Where(case.device, case.dtype, extra=f"hyperparameter set {i + 1} of {n_hp}: "
                  f"{hp_text}")
    init_call = describe_call(init_name, ["param"], (param0,), init_kw)
    ref_state = session.reference(spec.init, clone_value(param0), **init_kw)
    stu_param = clone_value(param0)
    chained = None
    if calls is None and isinstance(student_step, _remote.RemoteCallable) and isinstance(
            student_init, _remote.RemoteCallable):  # this run's init and steps in one exchange
        calls = session.student(
            lambda: student_step.chains([{"param": clone_value(param0), "grads": grads,
                                          "kwargs": step_kw, "init_kwargs": init_kw}],
                                        init=student_init)[0], where,
            f"{init_name} and {steps} steps of {step_name} from the state it returns",
            role=step_name)
    if calls is not None:
        observed_init, chained = calls[0], calls[1:]
    stu_state = session.student(
        (lambda: observed_init((stu_param,))) if calls is not None else (
            lambda: student_init(stu_param, **init_kw)), where, init_call, role=init_name)
    found = compare(ref_state, stu_state, rtol, atol, input_dtype=case.dtype,
                    input_device=case.device)
    if found:
        path, mismatch = found
        fail(init_name, f"returned a wrong state: {_where_in_state(path)}"
             f"{_problem(mismatch)}", where,
             [f"call: {init_call}", *mismatch_lines(mismatch, rtol, atol)])
    if compare(param0, stu_param, 0.0, 0.0) is not None:
        fail(init_name, "modified its argument param", where, [f"call: {init_call}"])

    # -- steps ---------------------------------------------------------------------------
    ref_param, history = clone_value(param0), []
    stu_current = clone_value(param0)
    if chained is None and isinstance(student_step, _remote.RemoteCallable):
        chained = session.student(  # a local init (the grader's tests): the steps in one go
            lambda: student_step.chains([{"param": stu_current, "grads": grads,
                                          "kwargs": step_kw, "state": stu_state}])[0], where,
            f"{steps} steps of {step_name} from the state your {init_name} returned",
            role=step_name)
    for t in range(steps):
        where = Where(case.device, case.dtype, extra=f"step {t + 1} of {steps}, "
                      f"hyperparameter set {i + 1} of {n_hp}: {hp_text}")
        grad = grads[t]
        ref_param, ref_state = session.reference(
            spec.step, clone_value(ref_param), clone_value(grad), clone_value(ref_state),
            **step_kw)
        args = (clone_value(stu_current), clone_value(grad), clone_value(stu_state))
        snapshot = clone_value(args)
        state_note = (f"the state your {init_name} returned" if t == 0 else
                      f"the state your {step_name} returned at step {t}") + (
                          f" ({describe_value(stu_state)})" if isinstance(stu_state, dict)
                          else "")
        call_text = describe_call(step_name, ["param", "grad", "state"], args, step_kw,
                                  notes={"state": state_note})
        out = session.student((lambda a=args, t=t: chained[t](a)) if chained else (
            lambda a=args: student_step(*a, **step_kw)), where, call_text)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            fail(step_name, f"returned {describe_value(out)}; expected a pair "
                 "(new_param, new_state)", where, [f"call: {call_text}"])
        new_param, new_state = out
        if not isinstance(new_state, dict):
            fail(step_name, f"returned {describe_value(new_state)} as the new state; expected "
                 "a dict", where, [f"call: {call_text}"])
        problems = []
        found = compare(ref_param, new_param, rtol, atol, input_dtype=case.dtype,
                        input_device=case.device)
        if found:
            problems.append(("new_param", found[1]))
        found_state = compare(ref_state, new_state, rtol, atol, input_dtype=case.dtype,
                              input_device=case.device)
        if found_state:
            problems.append((f"new_state{found_state[0]}", found_state[1]))
        history.append((clone_value(new_param), clone_value(new_state)))
        if problems:
            label, mismatch = problems[0]
            lines = [f"call: {call_text}", *mismatch_lines(mismatch, rtol, atol)]
            if mismatch.what == "nonfinite":
                lines.insert(1, mismatch.text)
            if len(problems) > 1:
                lines.append(f"also wrong at this step: {problems[1][0]}")
            if mismatch.what in ("values", "nonfinite") or (
                    label.startswith("new_state") and mismatch.what == "values"):
                lines += mistake_lines(_matching(catalogue, step_kw, init_kw, param0, grads,
                                                 history, rtol, atol))
            what = "wrong values" if mismatch.what == "values" else (
                "a non-finite value" if mismatch.what == "nonfinite" else mismatch.text)
            if label.startswith("new_state") and mismatch.what == "keys":
                fail(step_name, f"returned a state with {mismatch.text}", where, lines)
            fail(step_name, f"{what} in {label}", where, lines)
        for name, before, after in zip(("param", "grad", "state"), snapshot, args):
            change = first_change(before, after, name)
            if change:
                fail(step_name, f"modified its argument {name}", where, [
                    f"call: {call_text}", change,
                    "a pure step must leave its inputs unchanged and return a new state: copy "
                    "the state dict and its tensors before updating them"])
        stu_current, stu_state = new_param, new_state


def _where_in_state(path: str) -> str:
    return f"state{path} " if path else ""


def _problem(mismatch) -> str:
    return "has wrong values" if mismatch.what == "values" else mismatch.text


def _matching(catalogue, step_kw, init_kw, param0, grads, history, rtol, atol) -> list[Mistake]:
    """The catalogued variants whose whole trajectory so far equals the student's (the new
    parameter and every tensor in the state they share, at every step)."""
    matched = []
    for mistake in catalogue:
        try:
            if mistake.applies is not None and not mistake.applies(**step_kw):
                continue
            v_init, v_step = mistake.fn
            state = v_init(clone_value(param0), **init_kw)
            param = clone_value(param0)
            ok = True
            for t, (stu_param, stu_state) in enumerate(history):
                param, state = v_step(param, clone_value(grads[t]), state, **step_kw)
                if compare(param, stu_param, rtol, atol) is not None:
                    ok = False
                    break
                for key, value in state.items():
                    if isinstance(stu_state, dict) and hasattr(value, "shape") and (
                            key in stu_state) and compare(value, stu_state[key], rtol,
                                                          atol) is not None:
                        ok = False
                        break
                if not ok:
                    break
        except Exception:
            continue
        if ok:
            matched.append(mistake)
    return matched
