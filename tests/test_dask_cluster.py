"""The Dask engine on a ``distributed.LocalCluster`` with worker processes (tasks pickled
as on a real cluster): ``client=`` and the current client, the ModernDiD guide's call, and
killed workers.

One cluster (two single-threaded worker processes under nannies) serves the module; every
fit runs with a timeout, so a lost worker can fail a test but never hang it. A killed
worker's process is restarted by its nanny, its tasks rerun elsewhere and its persisted
blocks are rebuilt from their lineage; since the kernels are deterministic and the
reduction tree is fixed, the result must equal the undisturbed fit digit for digit.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest

import moderndid
import moderndid as did
from moderndid import MPResult, att_gt
from moderndid.dask import dask_att_gt
from moderndid.dask import prepare as dask_prepare
from moderndid.dask.executor import DaskExecutor
from moderndid.errors import DaskWorkerLostError

dd = pytest.importorskip("dask.dataframe", reason="dask is not installed")
distributed = pytest.importorskip("distributed", reason="distributed is not installed")

from fault_kernels import KillOnce  # noqa: E402  (after the skips: needs numpy only)
from test_dask import MPDTA, _mpdta, assert_same  # noqa: E402

pytestmark = [pytest.mark.dask, pytest.mark.slow]

FIT_TIMEOUT = 180  # seconds; an undisturbed fit takes about 2 s here
T = TypeVar("T")


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``, failing the test after ``seconds`` instead of hanging it."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


@pytest.fixture(scope="module")
def client():
    """Two worker processes; the scheduler gives up on a task after it killed two workers
    (``allowed-failures`` 1, so the always-dying kernel fails fast). Not the default
    client: a fit runs on it only when told to."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, memory_limit="2GiB")
        client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a computation ran on Dask's default scheduler")


def test_workers_run_this_checkout(client):
    files = client.run(lambda: __import__("moderndid").__file__)
    assert set(files.values()) == {moderndid.__file__}


def test_guide_call_runs_on_the_given_client_only(client):
    import dask

    pdf = _mpdta()
    ddf = dd.from_pandas(pdf, npartitions=4)
    kwargs = dict(MPDTA, xformla="~ lpop", boot=True, biters=99, random_state=4)
    # the default scheduler refuses to run anything: every task must go to the client
    with dask.config.set(scheduler=_forbidden):
        res = within(FIT_TIMEOUT, lambda: dask_att_gt(ddf, **kwargs, client=client,
                                                      n_partitions=64, max_cohorts=4))
        rc = within(FIT_TIMEOUT, lambda: did.att_gt(ddf, **kwargs, panel=False,
                                                    client=client))
    assert_same(res, att_gt(pdf, **kwargs))
    assert_same(rc, att_gt(pdf, **kwargs, panel=False))


def test_without_client_the_current_client_else_the_default_scheduler(client):
    import dask

    pdf = _mpdta()
    ddf = dd.from_pandas(pdf, npartitions=2)
    # a second client of the cluster, the default one: Client.current() returns it
    with distributed.Client(client.cluster) as current:
        assert distributed.Client.current() is current
        with dask.config.set(scheduler=_forbidden):
            res = within(FIT_TIMEOUT, lambda: att_gt(ddf, **MPDTA))
    assert_same(res, att_gt(pdf, **MPDTA))
    # no client at all: Dask's default scheduler (here, the forbidden one) runs the fit
    with dask.config.set(scheduler=_forbidden), pytest.raises(AssertionError,
                                                              match="default scheduler"):
        within(FIT_TIMEOUT, lambda: att_gt(ddf, **MPDTA))


# ------------------------------------------------------------------------------ faults

FAULT_SPEC = dict(MPDTA, xformla="~ lpop", clustervars=["countyreal", "cluster"],
                  boot=True, biters=99, random_state=11)


def _fit(client: Any, pdf: pd.DataFrame) -> MPResult:
    ddf = dd.from_pandas(pdf, npartitions=3)
    return within(FIT_TIMEOUT, lambda: att_gt(ddf, **FAULT_SPEC, client=client,
                                              n_partitions=4))


def identical(a: MPResult, b: MPResult) -> None:
    """Digit for digit: every number of the fit, the bootstrap included."""
    for name in ("att_gt", "se_gt", "vcov_analytical", "critical_value"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.moments.gram, b.moments.gram, err_msg="gram")
    np.testing.assert_array_equal(a.moments.boot, b.moments.boot, err_msg="bootstrap")


@pytest.fixture(scope="module")
def undisturbed(client) -> MPResult:
    pdf = _mpdta()
    res = _fit(client, pdf)
    assert_same(res, att_gt(pdf, **FAULT_SPEC))
    return res


def _wrap_pass(monkeypatch: Any, word: str, **wrapper: Any) -> None:
    """Wrap the kernel of the passes whose description holds ``word`` in :class:`KillOnce`
    (``"unit table"``: the task that builds the unit-table blocks)."""
    if word == "unit table":
        monkeypatch.setattr(dask_prepare, "_build", KillOnce(dask_prepare._build, **wrapper))
        return
    run = DaskExecutor.run

    def wrapped(self: DaskExecutor, kernel: Any, state: Any, description: str,
                **kwargs: Any) -> Any:
        if word in description:
            kernel = KillOnce(kernel, **wrapper)
        return run(self, kernel, state, description, **kwargs)

    monkeypatch.setattr(DaskExecutor, "run", wrapped)


def _restarted(client: Any) -> None:
    """Wait until a worker is up again after a kill (the nanny restarts the killed process;
    on a loaded machine that can take a while, and one worker is enough for the next fit)."""
    client.wait_for_workers(1, timeout=120)


@pytest.mark.parametrize("word", ["unit table", "logit", "moments"])
def test_worker_killed_mid_pass_gives_the_same_digits(client, undisturbed, monkeypatch,
                                                      tmp_path, word):
    marker = str(tmp_path / "killed")
    _wrap_pass(monkeypatch, word, marker=marker)
    res = _fit(client, _mpdta())
    assert os.path.exists(marker), "no worker was killed"
    _restarted(client)
    identical(res, undisturbed)


def test_the_check_fails_on_a_non_deterministic_kernel(client, undisturbed, monkeypatch,
                                                       tmp_path):
    _wrap_pass(monkeypatch, "moments", marker=str(tmp_path / "killed"), perturb=True)
    res = _fit(client, _mpdta())
    _restarted(client)
    with pytest.raises(AssertionError):
        identical(res, undisturbed)


def test_a_task_that_always_kills_its_worker_raises_a_typed_error(client, monkeypatch,
                                                                  tmp_path):
    _wrap_pass(monkeypatch, "moments", marker=str(tmp_path / "killed"), every=True)
    with pytest.raises(DaskWorkerLostError, match=r"Dask worker tcp://127\.0\.0\.1:\d+ died"):
        _fit(client, _mpdta())
    _restarted(client)
