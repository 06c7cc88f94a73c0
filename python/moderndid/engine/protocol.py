"""The contract between estimators and engines.

An engine (Spark, Dask) turns a distributed input into the metadata of the data
(:class:`~moderndid.engine.spec.DidData`) and an :class:`~moderndid.engine.executor.Executor`
over its partitions: :meth:`Engine.prepare`. Every decision taken from the input's
statistics (what is an error, how cohorts are recoded, which groups are too small) is the
estimators' and reaches the engine as a :class:`Planner`, so engines never import an
estimator and every engine decides exactly as the in-memory path does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from moderndid.engine.spec import DidData, DidSpec

if TYPE_CHECKING:  # pragma: no cover - typing only
    from moderndid.engine.executor import Executor
    from moderndid.engine.panel_blocks import PanelLayout, RowColumns


@dataclass(frozen=True)
class CohortPlan:
    """How raw first-treated periods are recoded (R `did`'s rules)."""

    to_never: list[float]  # cohorts that become the comparison group (no never treated)
    dropped: list[float]  # cohorts treated in the first period
    excluded: frozenset[float]  # cohorts kept as comparisons but not estimated
    period_cutoff: float | None  # periods from here on are dropped


@dataclass
class PanelPlan:
    """What an engine needs to run the passes over its unit-table blocks."""

    meta: DidData  # partitions is empty: the data stay on the workers
    layout: PanelLayout
    two_period: bool = False  # triple differences with two periods and one treated cohort
    subgroups: dict[tuple[float, float], int] = field(default_factory=dict)  # (G, Q) units


class Planner(Protocol):
    """The estimators' decisions from the statistics an engine gathers."""

    def plan_panel(self, info: Sequence[Mapping[str, Any]], spec: DidSpec,
                   covariates: list[str], ordered: dict[str, tuple[str, str]],
                   cols: RowColumns,
                   count_units: Callable[[PanelLayout], dict[tuple[float, float, int], int]],
                   raise_flag: Callable[[int], None]) -> PanelPlan:
        """Validate block statistics, recode cohorts, count units (panels)."""

    def duplicate_row_error(self, unit: Any, period: Any, spec: DidSpec) -> Exception:
        """The error for the smallest unit with two rows in one period."""

    def varying_error(self, what: str, column: str, unit: Any) -> Exception:
        """The error for the smallest unit whose ``what`` column varies over time."""

    def check_columns(self, roles: Sequence[tuple[Any, str]], available: Sequence[str],
                      describe: Callable[[str], str]) -> None:
        """Refuse missing columns and unusable types (``describe(column)`` gives the
        column's type in the engine-neutral vocabulary of
        :func:`moderndid.core.frames.type_label`)."""

    def check_statistics(self, spec: DidSpec, ordered: Sequence[tuple[str, str]],
                         rows: int, missing: Sequence[int], wmin: float, wmax: float,
                         fractional: Mapping[str, int], xx: np.ndarray | None,
                         covariates: list[str], max_abs: Sequence[float] | None = None
                         ) -> None:
        """Refuse empty data, missing values, bad weights, fractional ids, values too
        large for the estimator, collinearity."""

    def group_coding(self, spec: DidSpec, periods: np.ndarray, raw_cohorts: np.ndarray,
                     partition_values: set[float]) -> tuple[bool, dict[float, float]]:
        """Triple differences' two-period coding: (two_period, raw -> first-treated)."""

    def cohort_plan(self, raw: np.ndarray, periods: np.ndarray, spec: DidSpec) -> CohortPlan:
        """The recoding of distinct raw cohorts (with R `did`'s warnings)."""

    def cohort_labels(self, raw: np.ndarray, periods: np.ndarray, plan: CohortPlan,
                      spec: DidSpec) -> list[float]:
        """Recoded cohorts present in the data (``inf`` = never treated)."""

    def metadata(self, kind: str, periods: np.ndarray, counts: dict[float, int],
                 plan: CohortPlan, names: list[str], n_rows: int, n_units: int,
                 clustered: bool, xtv: bool, spec: DidSpec) -> DidData:
        """The data's metadata, after the small-group rule."""


@dataclass(frozen=True)
class EngineSettings:
    """Engine options of a call (ignored by engines they do not concern)."""

    n_partitions: int | None = None
    session: Any = None  # a SparkSession for Spark
    client: Any = None  # a distributed.Client for Dask
    n_jobs: int | None = 1
    max_cohorts: int | None = None  # accepted for ModernDiD compatibility (no effect)


@dataclass
class Prepared:
    """A prepared distributed input: metadata, an executor over it, and its release."""

    meta: DidData
    executor: Executor
    release: Callable[[], None]
    two_period: bool = False
    subgroups: dict[tuple[float, float], int] = field(default_factory=dict)


class Engine(Protocol):
    """A distributed execution engine (one package: ``moderndid.spark``, ``moderndid.dask``)."""

    name: str

    def prepare(self, data: Any, spec: DidSpec, settings: EngineSettings,
                planner: Planner) -> Prepared:
        """Validate ``data`` with ``planner``'s decisions and build its partitions."""
