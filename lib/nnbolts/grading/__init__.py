"""What the hidden tests of the course's exercises call: compare a student's function with its
``nnbolts`` reference over seeded random cases, on every available device and in float32 and
float64, and explain the first disagreement.

A hidden test is one call; it returns ``None`` when the student's code is right and raises an
``AssertionError`` (:class:`GradingFailure`) whose message is the feedback otherwise::

    check_elementwise(sigmoid_grad, nnbolts.activations.sigmoid_grad)
    check_initializer(kaiming_uniform_, nnbolts.init.kaiming_uniform_,
                      kwargs=[{"nonlinearity": "relu"}])
    check_rule(adam_init, adam_step, rule="adam")
    check_schedule(cosine, nnbolts.schedules.cosine, configs=[dict(lr=0.1, total_steps=50)])
    check_minibatches(minibatches)
    check_function(fan_in_and_fan_out, nnbolts.init.fan_in_and_fan_out,
                   lambda case: case.randn(*case.shape(min_dims=2)))

A message names the function, the device, the dtype, the case and the call (shapes and
hyperparameters, never the hidden data in bulk), the first differing index with the expected
and received values and the largest errors, and, when the output equals a known wrong variant
(no bias correction, ε inside the root, wrong sign, off-by-one step count, momentum buffer
started at zero, ...), says "This looks like: <mistake> (hint: ...)". For example::

    adam_step: wrong values in new_param (on CPU, float32, step 1 of 8, hyperparameter set 1 of
    4: lr=0.01)
      call: adam_step(param, grad, state, lr=0.01) where param is a float32 tensor of shape (5,)
      on CPU; grad is ...; state is the state your adam_init returned (...)
      first difference at index [0]: expected 0.3304, got 0.3021
      5 of 5 elements differ; max abs error 0.0316, max rel error 0.0957 (tolerance ...)
      This looks like: no bias correction (hint: m and v start at 0, ...)

Checked every time: inputs are cloned for each side and the student's must be unchanged
afterwards (a pure function must not modify its arguments); outputs keep the input's device and
dtype ("returned a float64 tensor for float32 input", "returned a CPU tensor for a cuda:0
input"); NaN/inf where the reference is finite is reported as such; an exception in the
student's code is reported with its type, message and the line of the student's code.

Tolerances (:func:`tolerance`): float32 rtol 1.3e-6·k, atol 1e-5·k (torch's defaults); float64
rtol 1e-7·k, atol 1e-9·k; k = 1 for single calls, 2 for optimizer trajectories.

Anti-cheat and its limits
-------------------------
Flagged cheating raises :class:`CheatingSuspected`, whose message starts with
``"CHEATING SUSPECTED:"`` so that the pipeline can list flagged submissions.

1. **Patched comparison functions.** No verdict goes through ``torch.allclose``,
   ``torch.testing.assert_close``, ``torch.equal``, ``Tensor.__eq__``, ``numpy.allclose``,
   ``numpy.testing``, ``math.isclose`` or even ``abs``/``max``: tensors are read with
   ``torch._C.TensorBase.tolist`` (a method of an immutable C type, called with torch functions
   disabled) and compared with ``float`` operators. Tensor subclasses are refused (their
   ``__torch_function__`` could lie). :func:`integrity_check` (run before and after every
   ``check_*``) compares about 60 such functions with the ones captured when this package was
   imported, checks that the captured ones are genuine (C-implemented, or Python code inside
   torch's/numpy's own files), that no torch function mode (other than the default-device one)
   or dispatch mode is active, and that nnbolts' reference functions are neither rebound nor
   given another ``__code__``. *Limits:* a replacement made before this package was imported
   is caught only if it is a Python function or object from outside the library (import
   ``nnbolts.grading`` in the notebook's first, locked cell so that the capture happens before
   any student code); replacing a C function with another C function before that import, or
   editing memory with ``ctypes``, is not caught; the student's code can rebind
   ``nnbolts.grading``'s own functions or ``sys.modules["nnbolts.grading"]`` itself, which no
   in-process check can see — :func:`audit_source` flags these statically for the pipeline.
2. **Calling the reference.** While the student's code runs, a profiler
   (``sys.setprofile`` and ``threading.setprofile``) watches every Python call. The reference
   and the private nnbolts code it ran (recorded while the grader called it: ``_adam_``,
   ``Schedule.__call__``, ...) are forbidden: entering one — directly, through a wrapper or
   alias, ``functools.partial``, an nnbolts optimizer class, or a function rebuilt from the
   reference's ``__code__`` — and running a verbatim copy of its source (same bytecode, names
   and constants, compiled elsewhere) are flagged "the submission calls the reference
   implementation nnbolts.optim.adam_step". Before anything runs, a student function that *is*
   an nnbolts function (``from nnbolts.optim import adam_step``) or an nnbolts schedule object is
   flagged too. Public nnbolts helpers stay allowed (``fan_in_and_fan_out`` inside
   ``xavier_uniform_``, ``sigmoid`` inside ``silu_grad``, ``minibatches`` inside a training
   loop): while one runs, only the reference and the private code of its own module count;
   ``forbid=``/``allow=`` adjust this per test. torch's own version of the graded function
   (``torch.sigmoid`` in ``sigmoid``, ``torch.optim.adam``, ``torch.nn.init.xavier_uniform_``;
   for AdamW both ``torch/optim/adamw.py`` and the ``adam.py`` its ``step`` runs) is a plain
   failure, not cheating. The grader's own reference calls run outside the watch.
   *Limits:* code that removes the profiler is itself flagged, but a student thread started
   before the check runs unwatched; source that was edited (renamed variables) is not
   recognised as a copy, nor is a body an honest student could write the same way: fewer than
   three statements, pure delegation, an ``__init__`` that stores its arguments, a
   ``__call__`` that forwards, ``__repr__`` and the other protocol methods; C extensions are
   invisible; a generator made by a public helper is not watched when the student resumes it,
   unless it belongs to the reference's own module;
   grading a wrapper whose argument is an nnbolts schedule flags that schedule's calls — wrap
   plain functions in such tests.
3. **Infinite loops.** Each student call runs under a wall-clock limit (``timeout``, default
   10 s; all calls of one test together under ``budget``, default 30 s). In the main thread on
   POSIX (where a notebook kernel runs cells) this is ``SIGALRM`` via ``setitimer``, restoring
   any previous handler and timer; it also wakes ``time.sleep``. The alarm repeats every 50 ms
   after the deadline and, each time, makes the student's frames raise at their next line, so
   a loop whose ``except``/``except BaseException`` swallows the alarm is still stopped. A
   replaced ``SIGALRM`` handler is flagged as cheating. Off the main thread, an exception is
   injected into the thread (``PyThreadState_SetAsyncExc``) and the call watcher raises at the
   first call after the deadline. *Limits:* Python only notices between bytecodes, so one long
   C call (a huge matrix product, or ``time.sleep`` off the main thread) finishes first; two
   nested handlers that both swallow ``BaseException`` outlast the alarm. The pipeline's
   per-cell and per-notebook timeouts are the backstop: keep ``budget`` below the per-cell
   timeout.

Every ``check_*`` takes ``anti_cheat=False`` to switch off measure 2 (and the vetting of the
student's function) so that the grader can be tested by grading a reference against itself;
hidden tests leave it on.

None of this is a sandbox: the submission runs in the grader's process. Reading files,
memory blow-ups and kernel crashes are the pipeline's business (separate processes and limits).
"""

from ._guard import (  # noqa: I001 - the guard captures the genuine functions first
    CheatingSuspected,
    GradingFailure,
    GradingSetupError,
    audit_source,
    integrity_check,
    tampering,
)
from ._cases import DTYPES, Case, cases, devices
from ._compare import tolerance
from ._engine import DEFAULT_BUDGET, DEFAULT_TIMEOUT, Call, check_elementwise, check_function
from ._inits import check_initializer
from ._minibatches import check_minibatches
from ._mistakes import Mistake, add_known_mistake, known_mistakes
from ._remote import harness, in_kernel
from ._rules import RULES, RuleSpec, check_rule
from ._schedules import check_schedule

check_activation = check_elementwise
"""Another name for :func:`check_elementwise` (it also grades softmax and its derivatives)."""

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_TIMEOUT",
    "DTYPES",
    "RULES",
    "Call",
    "Case",
    "CheatingSuspected",
    "GradingFailure",
    "GradingSetupError",
    "Mistake",
    "RuleSpec",
    "add_known_mistake",
    "audit_source",
    "cases",
    "check_activation",
    "check_elementwise",
    "check_function",
    "check_initializer",
    "check_minibatches",
    "check_rule",
    "check_schedule",
    "devices",
    "harness",
    "in_kernel",
    "integrity_check",
    "known_mistakes",
    "tampering",
    "tolerance",
]
