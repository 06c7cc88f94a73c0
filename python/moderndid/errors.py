"""Typed errors raised by moderndid.

Every error a user can trigger with bad input derives from :class:`ModernDiDError`, which
is also a :class:`ValueError`, so generic ``except ValueError`` handlers keep working.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable


class ModernDiDError(ValueError):
    """Base class of every input or estimation error raised by moderndid."""


class InvalidOptionError(ModernDiDError):
    """An argument has a value outside its documented set or range."""


_MAX_LISTED = 30


class ColumnNotFoundError(ModernDiDError, KeyError):
    """A column named in the call is not in the data."""

    def __init__(self, column: str, role: str, available: Iterable[str]):
        available = list(available)
        # near misses ignoring case ("Year" -> "year"), the first of equal names
        by_lower = {name.lower(): name for name in reversed(available)}
        close = [by_lower[c]
                 for c in difflib.get_close_matches(column.lower(), list(by_lower), n=3)]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        # Wide tables would otherwise turn the message into a wall of names.
        shown = repr(available[:_MAX_LISTED])[:-1]
        if len(available) > _MAX_LISTED:
            shown += f", ... ({len(available) - _MAX_LISTED} more)"
        super().__init__(f"{role} column {column!r} is not in the data.{hint} Columns: {shown}]")
        self.column = column
        self.role = role

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class ColumnTypeError(ModernDiDError, TypeError):
    """A column has a type the estimator cannot use (e.g. a text time column)."""


class MissingValuesError(ModernDiDError):
    """A column used by the estimator contains missing values (NaN / null)."""


class DataStructureError(ModernDiDError):
    """The data violate the panel or cohort structure (duplicates, time-varying group, ...)."""


class SingularDesignError(ModernDiDError):
    """A covariate design matrix is singular (collinear covariates, too few units)."""


class NumericalOverflowError(ModernDiDError):
    """A column holds finite values so large that the estimator's sums of squares and
    cross-products would overflow to infinity (the message names the column)."""


class ConvergenceError(ModernDiDError):
    """An iterative fit (propensity-score logit) did not converge."""


class UnsupportedInputError(ModernDiDError, TypeError):
    """The data object is of a kind moderndid cannot read."""


class SparkVersionError(ModernDiDError):
    """The moderndid jar or an executor runs another moderndid version than the driver."""


class SparkEnvironmentError(ModernDiDError):
    """Spark's Python workers cannot run moderndid (missing packages, wrong interpreter)."""


class SparkTaskLostError(ModernDiDError, RuntimeError):
    """Spark gave up on a task of the fit (it failed ``spark.task.maxFailures`` times: a
    Python worker or an executor died, ran out of memory, ...); the fit did not complete."""


class DaskWorkerLostError(ModernDiDError, RuntimeError):
    """Dask workers kept dying while running a task of the fit, and the scheduler gave up
    (the message names the last worker lost)."""


# Errors raised in a remote Python worker (a Spark executor) reach the driver as the text
# of a JVM exception. The worker writes the class name and message after this marker, and
# the driver raises the same class again: the class travels, not a guess from the text.
_REMOTE_MARKER = "moderndid-remote-error:"


def remote_error_text(exc: ModernDiDError) -> str:
    """The text a remote worker raises for ``exc`` (see :func:`error_from_remote`)."""
    return _REMOTE_MARKER + json.dumps({"class": type(exc).__name__, "message": str(exc)})


def error_from_remote(text: str) -> ModernDiDError | None:
    """The error a remote worker raised (by :func:`remote_error_text`), found in the text
    of the engine's exception; None when the text carries none."""
    start = text.find(_REMOTE_MARKER)
    if start < 0:
        return None
    try:
        payload, _ = json.JSONDecoder().raw_decode(text, start + len(_REMOTE_MARKER))
        cls = globals()[payload["class"]]
        message = str(payload["message"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(cls, type) and issubclass(cls, ModernDiDError)):
        return None
    error = cls.__new__(cls)
    Exception.__init__(error, message)  # classes with their own __init__ (ColumnNotFound)
    return error
