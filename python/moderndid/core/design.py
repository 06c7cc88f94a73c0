"""Covariate design matrices from R-style formulas (``"~ x1 + x2"``), via formulaic."""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.linalg
from formulaic import Formula, ModelSpec
from formulaic.parser.types import Factor

from moderndid.errors import InvalidOptionError, SingularDesignError

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
    whole_column = sorted({str(factor.expr) for term in formula for factor in term.factors
                           if _calls(str(factor.expr)) & WHOLE_COLUMN_TRANSFORMS})
    if whole_column:
        raise InvalidOptionError(
            f"xformla term(s) {', '.join(whole_column)} need the whole column at once "
            "(centering, scaling, splines, polynomials, lags), which the distributed engines "
            "do not have, so no engine evaluates them; add the transformed column to the "
            "data first")
    return formula


# formulaic transforms whose result for a row depends on other rows: their parameters
# (means, knots, the previous row) would differ between partitions.
WHOLE_COLUMN_TRANSFORMS = frozenset({"bs", "cc", "cr", "cs", "center", "lag", "poly", "scale",
                                     "standardize"})


def _calls(expression: str) -> set[str]:
    """Names of the functions an expression calls (``np.log`` counts as ``log``)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return set()
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    return ({f.id for f in calls if isinstance(f, ast.Name)}
            | {f.attr for f in calls if isinstance(f, ast.Attribute)})


def _factor_columns(factor: Factor) -> list[str]:
    """Data columns a formula factor reads. A looked-up name is a column as written:
    formulaic's own ``required_variables`` would cut ``first.treat`` down to ``first``."""
    if factor.eval_method == Factor.EvalMethod.LOOKUP:
        return [str(factor.expr)]
    return [str(v) for v in factor.required_variables]


def formula_columns(formula: Formula | None) -> list[str]:
    """Data columns a formula reads, in a stable order."""
    if formula is None:
        return []
    return sorted({c for term in formula for factor in term.factors
                   for c in _factor_columns(factor)})


MAX_LEVELS = 1_000  # distinct rows of a formula's categorical columns, gathered to the driver


@dataclass(frozen=True)
class CovariateDesign:
    """A covariate formula ready to evaluate on any subset of the rows: built once from the
    schema and the categorical columns' distinct values (from all rows), so that dummies and
    their reference level are the same on every partition and engine. ``spec`` is None for
    a plain sum of numeric columns, evaluated without formulaic."""

    columns: tuple[str, ...]  # data columns the formula reads
    categorical: tuple[str, ...]  # those that feed categorical factors (may be strings)
    names: tuple[str, ...]  # design columns, "(Intercept)" first
    spec: ModelSpec | None
    spec_intercept: bool = True  # whether ``spec`` makes the intercept column itself

    @property
    def covariates(self) -> list[str]:
        """The design's columns after the intercept."""
        return list(self.names[1:])

    def evaluate(self, table: pa.Table) -> np.ndarray:
        """The ``(rows, k)`` float64 covariates (intercept left out) of ``table``'s rows.

        A row with a missing value in a column the formula reads gets NaN everywhere, as
        does a term a transform leaves undefined (``np.log`` of a negative number); the
        engines count them and refuse the data, naming the column or the term.
        """
        n, k = table.num_rows, len(self.names) - 1
        if self.spec is None:
            x = np.empty((n, k))
            for j, c in enumerate(self.columns):
                x[:, j] = table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
            return x
        x = np.full((n, k), np.nan)
        complete = np.ones(n, dtype=bool)
        for c in self.columns:
            column = table.column(c)
            if column.null_count:
                complete &= column.is_valid().to_numpy(zero_copy_only=False)
        rows = _decoded(table.select(list(self.columns)))
        if not complete.all():
            rows = rows.filter(pa.array(complete))
        if rows.num_rows:
            with np.errstate(all="ignore"):
                matrix = self.spec.get_model_matrix(_pandas(rows), na_action="ignore")
            if matrix.shape[1] != len(self.names) - (not self.spec_intercept) or not all(
                    pd.api.types.is_numeric_dtype(kind) for kind in matrix.dtypes):
                # never silently: text cells would pass np.asarray(..., float) as numbers
                raise InvalidOptionError(
                    f"xformla evaluated to {matrix.shape[1]} columns of types "
                    f"{sorted({str(kind) for kind in matrix.dtypes})} on part of the data, "
                    f"not the {len(self.names)} numeric columns of the design; please report "
                    "this with the column types of the data")
            values = np.asarray(matrix, dtype=np.float64)
            x[complete] = values[:, 1:] if self.spec_intercept else values
        return x


def categorical_columns(formula: Formula | None, schema: pa.Schema) -> list[str]:
    """The columns that feed a categorical factor (``C(...)``, strings, booleans), whose
    distinct values the dummies need. Decided from the types alone (the formula is tried on
    one placeholder row), so every engine decides it before reading the data."""
    if formula is None:
        return []
    columns = formula_columns(formula)
    if any(c not in schema.names for c in columns) or _plain_numeric(formula, schema):
        return []
    trial = _model_spec(formula, _placeholder_rows(schema, columns, 1))
    found: set[str] = set()
    for term in formula:
        for factor in term.factors:
            state = trial.encoder_state.get(str(factor.expr))
            if state is not None and state[0].value == "categorical":
                found.update(_factor_columns(factor))
    return [c for c in columns if c in found]


def covariate_design(formula: Formula | None, schema: pa.Schema,
                     levels: pa.Table | None = None) -> CovariateDesign:
    """The :class:`CovariateDesign` of ``formula`` for data of ``schema``; ``levels`` holds
    the distinct rows (without missing values) of its :func:`categorical_columns`, from
    every row of the data."""
    if formula is None:
        return CovariateDesign((), (), ("(Intercept)",), None)
    simple = _plain_numeric(formula, schema)
    if simple:
        return CovariateDesign(tuple(simple), (), ("(Intercept)", *simple), None)
    columns = formula_columns(formula)
    categorical = tuple(levels.column_names) if levels is not None else ()
    if levels is not None and levels.num_rows > MAX_LEVELS:
        raise InvalidOptionError(
            f"xformla's categorical column(s) {', '.join(map(repr, categorical))} have more "
            f"than {MAX_LEVELS} distinct values; recode them into fewer categories first")
    if levels is not None and levels.num_rows:
        sample = levels
        for c in columns:
            if c not in categorical:
                sample = sample.append_column(c, _placeholder_rows(
                    schema, [c], levels.num_rows).column(c))
    else:
        sample = _placeholder_rows(schema, columns, 1)
    spec = _model_spec(formula, sample)
    names = ["(Intercept)" if c == "Intercept" else str(c) for c in spec.column_names]
    # Without one, an intercept is added, as R's DRDID does ("~ 0 + x" fits as "~ x").
    has_intercept = bool(names) and names[0] == "(Intercept)"
    if not has_intercept:
        names.insert(0, "(Intercept)")
    return CovariateDesign(tuple(columns), categorical, tuple(names), spec, has_intercept)


def distinct_rows(table: pa.Table, columns: list[str]) -> pa.Table | None:
    """The distinct rows of ``columns`` without missing values (in memory's levels)."""
    if not columns:
        return None
    return _decoded(table.select(columns)).drop_null().group_by(columns).aggregate([])


def _decoded(table: pa.Table) -> pa.Table:
    """Dictionary (pandas categorical) columns as plain values: a categorical's levels are
    the values present in the data on every engine, never a dtype's declared categories."""
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
    return table


def _pandas(table: pa.Table) -> pd.DataFrame:
    """``table`` for formulaic, text columns as Python strings (object dtype).

    Pandas' string dtypes depend on where a table came from (a Dask partition converts to
    ``string[pyarrow]``); formulaic 1.2 then encodes a categorical whose rows all hold one
    level as the text itself instead of 0/1 dummies. Object columns behave alike
    everywhere."""
    frame = table.to_pandas()
    for c in frame.columns:
        if pd.api.types.is_string_dtype(frame[c].dtype) and frame[c].dtype != object:
            frame[c] = frame[c].astype(object)
    return frame


def _model_spec(formula: Formula, rows: pa.Table) -> ModelSpec:
    try:
        # placeholder rows may hold values outside explicit levels (C(x, levels=[...])),
        # which pandas warns about: they only decide the kinds of the factors
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return formula.get_model_matrix(_pandas(_decoded(rows)),
                                            na_action="ignore").model_spec
    except Exception as exc:  # formulaic and the transforms raise many types
        reason = _ANSI.sub("", str(exc)).strip()
        raise InvalidOptionError(f"cannot evaluate xformla on the data: {reason}") from exc


def _placeholder_rows(schema: pa.Schema, columns: list[str], n: int) -> pa.Table:
    """``n`` rows of a harmless value of each column's type (1, "", False, the epoch)."""
    arrays = []
    for c in columns:
        kind = schema.field(c).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            value: object = ""
        elif pa.types.is_boolean(kind):
            value = False
        elif _is_numeric_type(kind):
            value = 1
        else:
            value = 0
        arrays.append(pa.array([value] * n).cast(kind))
    return pa.table(arrays, names=columns) if columns else pa.table({})


def missing_count(column: pa.Array | pa.ChunkedArray) -> int:
    """Missing values of a column: nulls, and in floating-point columns NaN and infinities."""
    if pa.types.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False)
        return int((~np.isfinite(values)).sum())  # nulls arrive as NaN
    return int(column.null_count)


def _plain_numeric(formula: Formula, schema: pa.Schema) -> list[str]:
    """The columns of a formula ``1 + a + b + ...`` of bare names of numeric columns (the
    fast path that needs no formulaic), else an empty list."""
    names: list[str] = []
    has_intercept = False
    for term in formula:
        factors = [str(f) for f in term.factors]
        if factors == ["1"]:
            has_intercept = True
        elif len(factors) == 1 and factors[0].isidentifier():
            names.append(factors[0])
        else:
            return []
    if has_intercept and names and all(_is_numeric_type(schema.field(c).type) for c in names):
        return names
    return []


def _is_numeric_type(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


# A term is collinear when the part of it that the earlier terms do not explain is below
# this fraction of its length (R's lm / dqrdc2 tolerance). Working from X'X costs half the
# digits, so the test is on the square root of the residual sum of squares, which keeps
# about 8 digits: 1e-7 sits above that noise.
RANK_TOLERANCE = 1e-7


def collinear_terms(xx: np.ndarray, tol: float = RANK_TOLERANCE) -> list[int]:
    """Indices of the design columns that are linear combinations of earlier ones.

    Columns are taken in order, as R's ``lm`` does: a column is kept when its residual on
    the columns kept before it is longer than ``tol`` times the column itself. Computed from
    ``xx = X'X`` alone (an in-order Cholesky that skips dependent columns), so every engine
    runs it on summed cross-products and no pivoting tie can change which column is named.
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
