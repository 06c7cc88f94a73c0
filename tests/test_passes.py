"""How the engine drives its passes: the pooled logit start, and the flat partial rows the
Spark executor reduces in one aggregation (pure numpy / pyarrow, no JVM)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import moderndid
from moderndid.did.estimators import local_logit
from moderndid.engine.partial import Partial
from moderndid.spark.executor import partial_from_flat, partial_to_flat

MPDTA = dict(yname="lemp", tname="year", idname="countyreal", gname="first.treat",
             xformla="~ lpop")


def _passes(caplog, data, **kwargs) -> tuple[list[str], object]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="moderndid"):
        res = moderndid.att_gt(data, **kwargs)
    names = [r.getMessage().split(": ")[1] for r in caplog.records
             if r.getMessage().startswith("moderndid att_gt: ")]
    return names, res


def _logit_iterations(caplog, data, **kwargs) -> tuple[int, object]:
    names, res = _passes(caplog, data, **kwargs)
    return sum("logit iteration" in name for name in names), res


def test_pooled_local_fits_leave_one_confirming_logit_pass_in_memory(caplog):
    """One partition: the partition's own logit fit is the maximum-likelihood fit, so the
    global Newton iterations stop after one step (they took 5 from the intercept-only
    start), and that step also computes the estimator sums: three passes in all."""
    names, _ = _passes(caplog, moderndid.load_mpdta(), **MPDTA)
    assert names == ["cell summaries", "logit iteration 1 + estimator sums", "moments"]


def test_without_a_logit_the_estimator_sums_have_their_own_pass(caplog):
    names, _ = _passes(caplog, moderndid.load_mpdta(), **MPDTA, est_method="reg")
    assert names == ["cell summaries", "estimator sums", "moments"]


@pytest.mark.parametrize("n_partitions", [2, 4, 40])
def test_pooled_start_with_many_partitions_gives_the_same_estimates(caplog, n_partitions):
    """2 or 4 partitions of 5,000 / 2,500 units: the pooled start is within O(1/n) of the
    fit, leaving at most 3 Newton passes (6 from the intercept-only start); with 2, the
    third step is below 1e-12 and its speculative estimator sums are kept. 40 partitions
    are too small for local fits of the smaller cohorts, which then start from the
    intercept-only fit."""
    data = moderndid.gen_did_scalable(n=10_000, n_periods=4, n_cohorts=3, n_covariates=4,
                                      random_state=5)["data"]
    kwargs = dict(yname="y", tname="time", idname="id", gname="group",
                  xformla="~ cov1 + cov2 + cov3 + cov4", est_method="dr")
    _, one = _logit_iterations(caplog, data, **kwargs)
    many_iter, many = _logit_iterations(caplog, data, n_partitions=n_partitions, **kwargs)
    if n_partitions <= 4:
        assert many_iter <= 3
    if n_partitions == 2:
        names, _ = _passes(caplog, data, n_partitions=n_partitions, **kwargs)
        assert names[-2] == "logit iteration 3 + estimator sums"
    np.testing.assert_allclose(many.att_gt, one.att_gt, rtol=0, atol=1e-12)
    np.testing.assert_allclose(many.se_gt, one.se_gt, rtol=0, atol=1e-12)


def test_local_logit_matches_newton_on_all_rows_and_refuses_separation():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(500), rng.normal(size=(500, 2))])
    D = (rng.uniform(size=500) < 1 / (1 + np.exp(-(x @ [0.2, 1.0, -0.5])))).astype(float)
    w = rng.uniform(0.5, 2.0, size=500)
    fit = local_logit(x, D, w)
    assert fit is not None
    gamma, hess = fit
    p = 1 / (1 + np.exp(-(x @ gamma)))
    np.testing.assert_allclose(x.T @ (w * (D - p)), 0, atol=1e-9)  # the score vanishes
    np.testing.assert_allclose(hess, (x * (w * p * (1 - p))[:, None]).T @ x)
    assert local_logit(x, np.ones(500), w) is None  # one class only
    separated = (x[:, 1] > 0).astype(float)
    assert local_logit(x, separated, w) is None  # no finite maximum


def test_flat_partial_round_trip():
    partial = Partial(sums={"a": np.arange(6.0).reshape(2, 3), "b": np.array([1.5]),
                            "gram": np.eye(2)},
                      maxima={"pmax/0": np.array([-np.inf]), "pmax/1": np.array([0.3])})
    batches = partial_to_flat(partial)
    assert len(batches) == 1 and batches[0].num_rows == 1
    row = batches[0].to_pylist()[0]
    back = partial_from_flat(row["layout"], row["sums"], row["maxima"])
    assert list(back.sums) == ["a", "b", "gram"] and list(back.maxima) == ["pmax/0", "pmax/1"]
    for name, value in partial.sums.items():
        np.testing.assert_array_equal(back.sums[name], value)
    for name, value in partial.maxima.items():
        np.testing.assert_array_equal(back.maxima[name], value)


def test_flat_rows_refuse_keyed_sums():
    partial = Partial(keyed={"cluster": (np.array([1], dtype=np.uint64), np.ones((1, 2)))})
    with pytest.raises(RuntimeError, match="keyed"):
        partial_to_flat(partial)


def test_moments_blocks_shrink_with_many_cells_and_give_the_same_numbers(monkeypatch):
    """The moments pass caps the values of z held at once (rows x (cells + cohorts + 1)),
    so many cells mean smaller blocks of units, not more memory; the sums (Gram matrix,
    bootstrap draws) do not depend on the block size."""
    import moderndid.did.kernels as kernels

    data = moderndid.gen_did_scalable(n=3_000, n_periods=6, n_cohorts=4, n_covariates=4,
                                      random_state=8)["data"]
    kwargs = dict(yname="y", tname="time", idname="id", gname="group",
                  xformla="~ cov1 + cov2", boot=True, biters=99, random_state=3)
    whole = moderndid.att_gt(data, **kwargs)
    sizes: list[int] = []
    original = kernels._moments_block

    def spy(part, state):
        sizes.append(part["G"].shape[0])
        return original(part, state)

    monkeypatch.setattr(kernels, "_moments_block", spy)
    width = len(whole.att_gt) + 4 + 1  # cells + treated cohorts + 1
    monkeypatch.setattr(kernels, "MOMENT_BLOCK_VALUES", 1024 * width)
    blocked = moderndid.att_gt(data, **kwargs)
    assert sizes == [1024, 1024, 952]
    np.testing.assert_allclose(blocked.se_gt, whole.se_gt, rtol=0, atol=1e-12)
    np.testing.assert_allclose(blocked.moments.gram, whole.moments.gram, rtol=0, atol=1e-12)
    np.testing.assert_allclose(blocked.moments.boot, whole.moments.boot, rtol=0, atol=1e-12)


def test_each_pass_gets_its_own_state(monkeypatch):
    """Every pass receives a snapshot of the driver's state: a kernel run later (a lazy
    executor, a retried task) still sees the logit coefficients of its own pass."""
    from moderndid.engine.executor import LocalExecutor

    seen: list[tuple[str, object, dict]] = []
    original = LocalExecutor.run

    def recording_run(self, kernel, state, description, **kwargs):
        seen.append((description, state,
                     {key: np.array(value) for key, value in state.gammas.items()}))
        return original(self, kernel, state, description, **kwargs)

    monkeypatch.setattr(LocalExecutor, "run", recording_run)
    data = moderndid.gen_did_scalable(n=4_000, n_periods=4, n_cohorts=3, n_covariates=4,
                                      random_state=3)["data"]
    moderndid.att_gt(data, yname="y", tname="time", idname="id", gname="group",
                     xformla="~ cov1 + cov2", est_method="dr", n_partitions=40)
    logit_passes = [entry for entry in seen if "logit iteration" in entry[0]]
    assert len(logit_passes) >= 2  # the coefficients changed between passes
    assert len({id(state) for _, state, _ in seen}) == len(seen)
    for _, state, at_call in seen:
        for key, gamma in at_call.items():
            np.testing.assert_array_equal(state.gammas[key], gamma)
