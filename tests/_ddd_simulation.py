"""A small staggered triple-differences panel with a known effect, for simulation tests.

Not collected by pytest (no ``test_`` prefix); imported by the DDD test modules, which
pytest's default import mode finds on ``sys.path`` next to them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Cohorts (first treated period; 0 = never treated), drawn with equal probability.
COHORTS = (0, 2, 3, 4)
#: Effect on eligible units of treated cohorts from their first treated period on.
EFFECT = 1.0


def staggered_ddd_panel(seed: int, n: int = 2000, periods: int = 5) -> pd.DataFrame:
    """Balanced panel: columns ``id, time, g, p, y``; true DDD(g, t) = 1 for t >= g, else 0.

    Units draw a cohort from :data:`COHORTS` and a 0/1 partition ``p`` with equal
    probability; the untreated outcome has a unit level, a common period shock, and linear
    trends that differ by cohort and by partition (so DiD alone is biased and DDD is not),
    plus unit-period noise.
    """
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array(COHORTS), size=n)
    p = (rng.random(n) < 0.5).astype(np.int64)
    t = np.arange(1, periods + 1)
    level = rng.standard_normal(n)
    trend = 0.1 * g + 0.2 * p
    treated = (p[:, None] == 1) & (g[:, None] > 0) & (t[None, :] >= g[:, None])
    y = (level[:, None] + trend[:, None] * t[None, :] + 0.5 * np.sin(t)[None, :]
         + EFFECT * treated + rng.standard_normal((n, periods)))
    return pd.DataFrame({
        "id": np.repeat(np.arange(1, n + 1), periods),
        "time": np.tile(t, n),
        "g": np.repeat(g, periods),
        "p": np.repeat(p, periods),
        "y": y.ravel(),
    })
