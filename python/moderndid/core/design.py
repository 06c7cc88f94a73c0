"""Covariate design matrices from R-style formulas (``"~ x1 + x2"``), via formulaic."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import scipy.linalg
from formulaic import Formula
from formulaic.parser.types import Factor

from moderndid.core.frames import check_no_missing, numeric_column, require_columns
from moderndid.errors import InvalidOptionError, MissingValuesError, SingularDesignError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_rhs(xformla: str | None) -> Formula | None:
    """Parse a one-sided formula; ``None``, ``"~1"`` or ``"~ 1"`` mean intercept only."""
    if xformla is None:
        return None
    if not isinstance(xformla, str):
        raise InvalidOptionError(f"xformla must be a string such as '~ x1 + x2', got {xformla!r}")
    text = xformla.strip()
    if not text.startswith("~"):
        raise InvalidOptionError(
            f"xformla must be one-sided and start with '~' (e.g. '~ x1 + x2'), got {xformla!r}"
        )
    if text[1:].strip() == "1":
        return None
    try:
        formula = Formula(text[1:])
    except Exception as exc:  # formulaic raises several parser error types
        # formulaic underlines the bad token with terminal colour codes: drop them.
        reason = _ANSI.sub("", str(exc)).strip()
        raise InvalidOptionError(f"cannot parse xformla {xformla!r}: {reason}") from exc
    # "~ a | b" and "~ a ~ b" parse to structured formulas, whose parts are not terms.
    if not all(hasattr(term, "factors") for term in formula):
        raise InvalidOptionError(
            f"xformla must be a single one-sided formula such as '~ x1 + x2', got {xformla!r}"
        )
    if len(formula) == 0:  # "~ 0": the estimators need at least one column
        raise InvalidOptionError(
            f"xformla {xformla!r} has no terms; use '~ 1' (or None) for no covariates"
        )
    return formula


def formula_columns(formula: Formula | None) -> list[str]:
    """Data columns a formula reads, in a stable order."""
    if formula is None:
        return []
    columns: set[str] = set()
    for term in formula:
        for factor in term.factors:
            if factor.eval_method == Factor.EvalMethod.LOOKUP:
                # A looked-up name is a column as written: formulaic's own
                # ``required_variables`` would cut ``first.treat`` down to ``first``.
                columns.add(str(factor.expr))
            else:
                columns.update(str(v) for v in factor.required_variables)
    return sorted(columns)


def design_matrix(table: pa.Table, formula: Formula | None) -> tuple[np.ndarray, list[str]]:
    """Evaluate a covariate formula on every row of ``table``.

    Returns the ``(n_rows, k)`` float64 design (intercept first) and the column names.
    Plain sums of numeric columns skip formulaic's pandas round trip, which matters on
    millions of rows; anything else (transforms, interactions, categoricals) goes through
    formulaic.
    """
    n = table.num_rows
    if formula is None:
        return np.ones((n, 1)), ["(Intercept)"]
    columns = formula_columns(formula)
    require_columns(table, [(c, "covariate (xformla)") for c in columns])
    simple = _plain_terms(formula)
    if simple is not None and all(_is_numeric(table, c) for c in simple):
        x = np.empty((n, len(simple) + 1))
        x[:, 0] = 1.0
        for j, c in enumerate(simple):
            x[:, j + 1] = numeric_column(table, c, "covariate (xformla)")
        return x, ["(Intercept)", *simple]
    frame = table.select(columns).to_pandas()
    for c in columns:
        missing = frame[c].isna()
        if missing.any():
            raise MissingValuesError(
                f"covariate (xformla) column {c!r} has {int(missing.sum())} missing or "
                "non-finite value(s); drop or impute them first"
            )
    try:
        # Inputs are free of nulls (checked above); nulls made by a transform such as
        # np.log of a negative value are reported below, naming the term.
        matrix = formula.get_model_matrix(frame, na_action="ignore")
    except Exception as exc:
        raise InvalidOptionError(f"cannot evaluate xformla on the data: {exc}") from exc
    x = np.asarray(matrix, dtype=np.float64)
    # R's (and the fast path's) name of the intercept, which the logit fit looks for.
    names = ["(Intercept)" if c == "Intercept" else str(c) for c in matrix.columns]
    for j, name in enumerate(names):
        check_no_missing(x[:, j], name, "covariate (xformla) term")
    return x, names


def _plain_terms(formula: Formula) -> list[str] | None:
    """Column names if the formula is ``1 + a + b + ...`` of bare names, else None."""
    names: list[str] = []
    has_intercept = False
    for term in formula:
        factors = list(term.factors)
        if len(factors) == 1 and str(factors[0]) == "1":
            has_intercept = True
            continue
        if len(factors) != 1 or not str(factors[0]).isidentifier():
            return None
        names.append(str(factors[0]))
    return names if has_intercept else None


def _is_numeric(table: pa.Table, column: str) -> bool:
    kind = table.schema.field(column).type
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


# A term is collinear when the part of it that the earlier terms do not explain is below
# this fraction of its length (R's lm / dqrdc2 tolerance). Working from X'X costs half the
# digits, so the test is on the square root of the residual sum of squares, which keeps
# about 8 digits: 1e-7 sits above that noise.
RANK_TOLERANCE = 1e-7


def collinear_terms(xx: np.ndarray, tol: float = RANK_TOLERANCE) -> list[int]:
    """Indices of the design columns that are linear combinations of earlier ones.

    Columns are taken in order, as R's ``lm`` does: a column is kept when its residual,
    after projecting on the columns kept before it, is longer than ``tol`` times the
    column itself; otherwise it is reported (a constant or all-zero column after the
    intercept is reported too). Computed from the cross-product ``xx = X'X`` alone (an
    in-order Cholesky that skips dependent columns), so every engine can run it on the
    summed cross-products, and no pivoting tie can change which column is named.
    """
    k = xx.shape[0]
    kept: list[int] = []
    factor = np.zeros((k, k))  # rows of the Cholesky factor of the kept columns
    dependent: list[int] = []
    for j in range(k):
        norm2 = float(xx[j, j])
        if not norm2 > 0 or not np.isfinite(norm2):
            dependent.append(j)
            continue
        if kept:
            lower = factor[np.ix_(kept, kept)]
            coef = scipy.linalg.solve_triangular(lower, xx[kept, j], lower=True)
            residual2 = norm2 - float(coef @ coef)
        else:
            coef = np.zeros(0)
            residual2 = norm2
        if residual2 <= 0 or np.sqrt(residual2 / norm2) < tol:
            dependent.append(j)
            continue
        factor[j, kept] = coef
        factor[j, j] = np.sqrt(residual2)
        kept.append(j)
    return dependent


def check_design_rank(xx: np.ndarray, names: list[str]) -> None:
    """Raise :class:`SingularDesignError` naming the terms that earlier terms explain.

    ``xx`` is the cross-product of the design with the intercept first and ``names`` its
    column names. The same check, from the same cross-product, runs on every engine.
    """
    culprits = [names[j] for j in collinear_terms(xx)]
    if culprits:
        raise SingularDesignError(
            f"the covariate design is singular: {', '.join(culprits)} "
            f"{'is a linear combination' if len(culprits) == 1 else 'are linear combinations'}"
            " of earlier terms of xformla (or constant); drop or recode "
            f"{'it' if len(culprits) == 1 else 'them'}"
        )
