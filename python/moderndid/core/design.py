"""Covariate design matrices from R-style formulas (``"~ x1 + x2"``), via formulaic."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from formulaic import Formula

from moderndid.core.frames import check_no_missing, numeric_column, require_columns
from moderndid.errors import InvalidOptionError, MissingValuesError


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
        return Formula(text[1:])
    except Exception as exc:  # formulaic raises several parser error types
        raise InvalidOptionError(f"cannot parse xformla {xformla!r}: {exc}") from exc


def formula_columns(formula: Formula | None) -> list[str]:
    """Data columns a formula reads, in a stable order."""
    if formula is None:
        return []
    return sorted(formula.required_variables)


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
            x[:, j + 1] = numeric_column(table, c, "covariate")
        return x, ["(Intercept)", *simple]
    frame = table.select(columns).to_pandas()
    for c in columns:
        missing = frame[c].isna()
        if missing.any():
            raise MissingValuesError(
                f"covariate column {c!r} has {int(missing.sum())} missing value(s); "
                "drop or impute them first"
            )
    try:
        matrix = formula.get_model_matrix(frame, na_action="raise")
    except Exception as exc:
        raise InvalidOptionError(f"cannot evaluate xformla on the data: {exc}") from exc
    x = np.asarray(matrix, dtype=np.float64)
    names = [str(c) for c in matrix.columns]
    for j, name in enumerate(names):
        check_no_missing(x[:, j], name, "covariate")
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
