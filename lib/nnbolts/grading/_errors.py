"""The exceptions of the grader: a wrong answer, a broken hidden test, a call that timed out."""

from __future__ import annotations


class GradingFailure(AssertionError):
    """A student's function disagrees with its reference. The message is the student's feedback.

    An ``AssertionError``, so that a hidden test fails as an ``assert`` does.
    """


class GradingSetupError(RuntimeError):
    """The hidden test itself is wrong (bad arguments, a reference that raises): not the
    student's fault, so not an ``AssertionError``."""


class StudentTimeout(BaseException):
    """A call of the student's function got no answer in time: the channel to the student's
    kernel timed out (``_remote``). A ``BaseException``, so that no ``except Exception`` on the
    way turns it into a wrong answer."""
