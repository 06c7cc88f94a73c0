"""Counter-based Mammen multipliers and the mboot-style bootstrap statistics.

The golden values below are also listed in docs/multipliers.md: every port (Spark / Scala)
must reproduce them bit for bit.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import moderndid.core.multipliers as mult
from moderndid.core.bootstrap_stats import (
    NORMAL_IQR,
    SE_DEGENERACY_TOL,
    bootstrap_se,
    quantile_type1,
    uniform_critical_value,
)
from moderndid.core.multipliers import (
    GOLDEN_GAMMA,
    MAMMEN_HIGH,
    MAMMEN_LOW,
    MAMMEN_P_LOW,
    MAMMEN_THRESHOLD,
    fnv1a64,
    keys_from_values,
    mammen_high_mask,
    mammen_multipliers,
    mix64,
    seed_from_random_state,
    unit_states,
)
from moderndid.errors import InvalidOptionError

MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------
# pure-Python reference of the specification (docs/multipliers.md), independent of numpy
# ---------------------------------------------------------------------------------------------


def ref_mix(z: int) -> int:
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def ref_u(seed: int, key: int, draw: int) -> int:
    state = ref_mix(key ^ ref_mix(seed + 0x9E3779B97F4A7C15))
    return ref_mix(state + (draw + 1) * 0x9E3779B97F4A7C15)


def ref_multiplier(seed: int, key: int, draw: int) -> float:
    uniform = (ref_u(seed, key, draw) >> 11) * 2.0**-53
    return MAMMEN_LOW if uniform < MAMMEN_P_LOW else MAMMEN_HIGH


# ---------------------------------------------------------------------------------------------
# golden values: seed 42
# ---------------------------------------------------------------------------------------------

GOLDEN_SEED = 42
GOLDEN_KEYS = [1, 2, 3, 2**40, 0xAF63DC4C8601EC8C]  # the last is FNV-1a 64 of "a"
GOLDEN_UNIT_STATES = [
    0xC69F3558819AF2C8,
    0xA2E690B03CB0661C,
    0xAA57873BCE9452A9,
    0x6DF5238A13C5708E,
    0xA714391DF559200C,
]
GOLDEN_U = [  # u for draws 0, 1, 2
    [0x361481E68FD27354, 0x1990FCFB6310F5BD, 0xB0A2144AD0C2D266],
    [0x04BA5342E6E3E72D, 0x325EE30E9744EA88, 0x08FE9769562CD228],
    [0x8A126A344796755F, 0x28510256FE8A1735, 0x1D6AEC6325C86B12],
    [0x31D39083E26631C1, 0x0AFD17A569BB9660, 0x91A4E95C18CAE063],
    [0xD951AC15F981F393, 0xA4429C2029A3FACF, 0xFB98EFF054A8BB8E],
]
GOLDEN_PATTERN = [  # draws 0..15, H = MAMMEN_HIGH, L = MAMMEN_LOW
    "LLLLHLHLLHLLHLLL",
    "LLLLLLLLLHLLHLLH",
    "LLLLLLLLLLHLLHLL",
    "LLLLLHLLLLLHHLHL",
    "HLHLLLLLLLLLLLLL",
]


def test_constants():
    assert MAMMEN_LOW == (1 - math.sqrt(5)) / 2 == -0.6180339887498949
    assert MAMMEN_HIGH == (1 + math.sqrt(5)) / 2 == 1.618033988749895
    assert MAMMEN_P_LOW == (1 + math.sqrt(5)) / (2 * math.sqrt(5)) == 0.7236067977499789
    assert MAMMEN_THRESHOLD == 6517670609419126 == MAMMEN_P_LOW * 2.0**53
    assert MAMMEN_P_LOW * MAMMEN_LOW + (1 - MAMMEN_P_LOW) * MAMMEN_HIGH == pytest.approx(
        0, abs=1e-15
    )
    assert MAMMEN_P_LOW * MAMMEN_LOW**2 + (1 - MAMMEN_P_LOW) * MAMMEN_HIGH**2 == pytest.approx(1)


def test_mix64_matches_published_splitmix64_outputs():
    # SplitMix64 outputs mix(state + k * GAMMA): seed 0 -> 0xE220A8397B1DCDAF; seed 1234567
    # -> the sequence used by the reference test vectors of Vigna's splitmix64.c ports.
    assert int(mix64([GOLDEN_GAMMA])[0]) == 0xE220A8397B1DCDAF
    states = [(1234567 + k * GOLDEN_GAMMA) & MASK64 for k in range(1, 6)]
    expected = [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ]
    assert mix64(np.array(states, dtype=np.uint64)).tolist() == expected
    assert [ref_mix(s) for s in states] == expected
    assert mix64(np.array([-1], dtype=np.int64)).tolist() == [ref_mix(MASK64)]


def test_fnv1a64_published_vectors():
    assert fnv1a64("") == 0xCBF29CE484222325
    assert fnv1a64("a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    assert keys_from_values(np.array(["", "a", "foobar"])).tolist() == [
        0xCBF29CE484222325,
        0xAF63DC4C8601EC8C,
        0x85944171F73967E8,
    ]


def test_golden_values():
    keys = np.array(GOLDEN_KEYS, dtype=np.uint64)
    assert int(keys_from_values(["a"])[0]) == GOLDEN_KEYS[-1]
    assert unit_states(GOLDEN_SEED, keys).tolist() == GOLDEN_UNIT_STATES
    for i, key in enumerate(GOLDEN_KEYS):
        assert [ref_u(GOLDEN_SEED, key, b) for b in range(3)] == GOLDEN_U[i]
    mask = mammen_high_mask(GOLDEN_SEED, keys, 0, 16)
    assert ["".join("H" if h else "L" for h in row) for row in mask] == GOLDEN_PATTERN
    m = mammen_multipliers(GOLDEN_SEED, keys, 0, 16)
    expected = [[MAMMEN_HIGH if c == "H" else MAMMEN_LOW for c in p] for p in GOLDEN_PATTERN]
    assert m.tolist() == expected


def test_vectorised_matches_reference():
    rng = np.random.default_rng(7)
    keys = rng.integers(0, 2**64, size=40, dtype=np.uint64)
    for seed in (0, 1, 2**64 - 1, 123456789):
        got = mammen_multipliers(seed, keys, 5, 29)
        want = [[ref_multiplier(seed, int(k), b) for b in range(5, 29)] for k in keys]
        assert got.tolist() == want


def test_multipliers_are_exact_constants():
    m = mammen_multipliers(3, np.arange(300), 0, 200)
    mask = mammen_high_mask(3, np.arange(300), 0, 200)
    assert np.array_equal(
        m.view(np.uint64), np.where(mask, MAMMEN_HIGH, MAMMEN_LOW).view(np.uint64)
    )


def test_draws_do_not_depend_on_batch_or_blocks(monkeypatch):
    seed = 2024
    keys = keys_from_values(np.arange(-500, 1500))
    full = mammen_high_mask(seed, keys, 0, 300)
    # other keys in the batch / order of the batch
    perm = np.random.default_rng(0).permutation(keys.size)
    assert np.array_equal(mammen_high_mask(seed, keys[perm], 0, 300), full[perm])
    assert np.array_equal(mammen_high_mask(seed, keys[7:8], 0, 300), full[7:8])
    # splits of the draw range
    parts = [mammen_high_mask(seed, keys, a, b) for a, b in [(0, 1), (1, 77), (77, 77), (77, 300)]]
    assert np.array_equal(np.concatenate(parts, axis=1), full)
    # internal row and column blocking
    for block in (1, 7, 300, 1000):
        monkeypatch.setattr(mult, "_BLOCK_ELEMENTS", block)
        assert np.array_equal(mammen_high_mask(seed, keys[:40], 0, 300), full[:40])
        assert np.array_equal(mammen_multipliers(seed, keys[:40], 10, 20) > 0, full[:40, 10:20])
    monkeypatch.setattr(mult, "_BLOCK_ELEMENTS", 1000)
    assert np.array_equal(mammen_high_mask(seed, keys, 0, 300), full)
    # int64 and uint64 views of the same keys agree
    assert np.array_equal(mammen_high_mask(seed, keys.view(np.int64), 0, 300), full)


def test_moments_and_low_share():
    # deterministic (fixed seed), so the tolerances (about 10 standard errors) cannot flake
    m = mammen_multipliers(20240601, np.arange(2000), 0, 500)  # 1e6 multipliers
    assert abs(m.mean()) < 0.01
    assert abs(m.var() - 1.0) < 0.01
    assert abs(np.mean(m < 0) - MAMMEN_P_LOW) < 0.005
    # no correlation between neighbouring draws or neighbouring keys
    assert abs(np.corrcoef(m[:, :-1].ravel(), m[:, 1:].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(m[:-1].ravel(), m[1:].ravel())[0, 1]) < 0.01
    # different seeds give different streams
    m2 = mammen_multipliers(20240602, np.arange(2000), 0, 500)
    assert abs(np.corrcoef(m.ravel(), m2.ravel())[0, 1]) < 0.01


def test_empty_shapes():
    assert mammen_high_mask(1, np.arange(4), 3, 3).shape == (4, 0)
    assert mammen_multipliers(1, np.empty(0, dtype=np.uint64), 0, 5).shape == (0, 5)


# ---------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------


def test_integer_keys():
    assert keys_from_values([1, -1, 0]).tolist() == [1, MASK64, 0]
    assert keys_from_values(np.array([-2, 5], dtype=np.int8)).tolist() == [MASK64 - 1, 5]
    assert keys_from_values(np.array([2**64 - 1], dtype=np.uint64)).tolist() == [MASK64]
    assert keys_from_values(np.array([3.0, -4.0, -0.0])).tolist() == [3, 2**64 - 4, 0]
    assert keys_from_values(pa.array([7, -7], pa.int32())).tolist() == [7, 2**64 - 7]
    assert keys_from_values(np.array([1, 2**63], dtype=object)).tolist() == [1, 2**63]
    assert keys_from_values(np.array([1, 2.0], dtype=object)).tolist() == [1, 2]
    assert keys_from_values(pd.Series([5, 6], dtype="Int64")).tolist() == [5, 6]
    assert keys_from_values([]).dtype == np.uint64


def test_string_keys_vectorised_and_consistent():
    words = ["", "a", "é", "unit-17", "x" * 300, "a\x00b", "日本語", "a"]
    want = [fnv1a64(w) for w in words]
    obj = np.array(words, dtype=object)
    assert keys_from_values(obj).tolist() == want
    assert keys_from_values(pa.array(words)).tolist() == want
    assert keys_from_values(pa.array(words, pa.large_string())).tolist() == want
    assert keys_from_values(pa.array(words).dictionary_encode()).tolist() == want
    assert keys_from_values(pa.chunked_array([words[:3], words[3:]])).tolist() == want
    assert keys_from_values(pa.array(words).slice(2, 3)).tolist() == want[2:5]
    assert keys_from_values(pd.Series(words, dtype="string[pyarrow]")).tolist() == want
    assert keys_from_values(pd.Series(words).astype("category")).tolist() == want
    assert keys_from_values([w.encode() for w in words]).tolist() == want
    assert keys_from_values(np.array(words)).tolist() == want  # embedded NUL kept
    assert keys_from_values(np.array([w.encode() for w in words])).tolist() == want
    if hasattr(np.dtypes, "StringDType"):  # numpy >= 2
        string_dtype = np.dtypes.StringDType()
        assert keys_from_values(np.array(words, dtype=string_dtype)).tolist() == want
    # strings and integers are different keys, by design
    assert keys_from_values(["7"]).tolist() != keys_from_values([7]).tolist()


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([1.5, 2.0], "integral"),
        (np.array([1.0, np.nan]), "missing"),
        (np.array([1.0, 2.0**63]), "int64 range"),
        (np.array(["a", None], dtype=object), "missing"),
        (pa.array(["a", None]), "missing"),
        (np.array(["a", 1], dtype=object), "all integers or all strings"),
        (np.array([2**64], dtype=object), "64-bit range"),
        (np.zeros((2, 2)), "one-dimensional"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "integers or strings"),
        (pa.array([1.5]), "integral"),
    ],
)
def test_key_errors(values, match):
    with pytest.raises(InvalidOptionError, match=match):
        keys_from_values(values)


# ---------------------------------------------------------------------------------------------
# seeds and argument checks
# ---------------------------------------------------------------------------------------------


def test_seed_from_random_state():
    assert seed_from_random_state(42) == 42
    assert seed_from_random_state(np.int64(42)) == 42
    assert seed_from_random_state(2**64 + 5) == 5
    a = seed_from_random_state(np.random.default_rng(1))
    assert a == seed_from_random_state(np.random.default_rng(1))
    assert 0 <= a < 2**64
    fresh = {seed_from_random_state(None) for _ in range(4)}
    assert len(fresh) == 4 and all(0 <= s < 2**64 for s in fresh)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", np.random.RandomState(0)])
def test_seed_from_random_state_errors(bad):
    with pytest.raises(InvalidOptionError):
        seed_from_random_state(bad)


@pytest.mark.parametrize(
    ("seed", "keys", "start", "stop"),
    [
        (-1, [1], 0, 1),
        (2**64, [1], 0, 1),
        (1.0, [1], 0, 1),
        (1, [1.0], 0, 1),
        (1, ["a"], 0, 1),
        (1, [1], -1, 1),
        (1, [1], 3, 2),
        (1, [1], 0, 2.0),
    ],
)
def test_stream_argument_errors(seed, keys, start, stop):
    with pytest.raises(InvalidOptionError):
        mammen_high_mask(seed, keys, start, stop)
    with pytest.raises(InvalidOptionError):
        mammen_multipliers(seed, keys, start, stop)


# ---------------------------------------------------------------------------------------------
# bootstrap statistics
# ---------------------------------------------------------------------------------------------


def test_quantile_type1_hand_values():
    x = np.array([3.0, 1.0, 4.0, 10.0, 5.0, 9.0, 2.0, 6.0, 8.0, 7.0])  # 1..10 shuffled
    # k = max(ceil(10 q), 1)
    cases = {0.0: 1, 0.05: 1, 0.1: 1, 0.15: 2, 0.25: 3, 0.5: 5, 0.51: 6, 0.75: 8, 0.95: 10, 1.0: 10}
    for q, k in cases.items():
        assert quantile_type1(x, q) == k
    assert quantile_type1(x, list(cases)).tolist() == list(cases.values())
    # n * q is evaluated in double precision like R: 100 * 0.07 = 7.000000000000001 -> 8th
    assert quantile_type1(np.arange(1.0, 101.0), 0.07) == 8.0
    # NaN ignored; all-NaN slices give NaN
    assert quantile_type1([np.nan, 2.0, 1.0, np.nan], 0.5) == 1.0
    assert np.isnan(quantile_type1([np.nan, np.nan], 0.5))
    assert np.isnan(quantile_type1(np.empty(0), 0.5))
    # axes and shapes
    m = np.arange(12.0).reshape(3, 4)
    assert quantile_type1(m, 0.5).tolist() == [4.0, 5.0, 6.0, 7.0]
    assert quantile_type1(m, [0.5, 1.0], axis=1).tolist() == [[1.0, 5.0, 9.0], [3.0, 7.0, 11.0]]
    assert quantile_type1(m, 0.5, axis=-1).tolist() == [1.0, 5.0, 9.0]


@pytest.mark.parametrize("q", [-0.1, 1.1, np.nan])
def test_quantile_type1_errors(q):
    with pytest.raises(InvalidOptionError):
        quantile_type1([1.0, 2.0], q)


def test_quantile_type1_bad_input():
    with pytest.raises(InvalidOptionError):
        quantile_type1(3.0, 0.5)
    with pytest.raises(InvalidOptionError):
        quantile_type1([1.0], 0.5, axis=1)


def test_bootstrap_se_known_values():
    assert NORMAL_IQR == 2 * 0.6744897501960817
    assert SE_DEGENERACY_TOL == math.sqrt(np.finfo(float).eps) * 10
    col = np.arange(1.0, 9.0)  # n = 8: Q25 = x_(2) = 2, Q75 = x_(6) = 6
    draws = np.column_stack(
        [
            col,
            np.zeros(8),  # degenerate -> NaN
            col * 1e-9,  # below sqrt(eps) * 10 -> NaN
            np.r_[col[:4], [np.nan] * 4],  # NaN ignored: n = 4, Q25 = 1, Q75 = 3
            np.full(8, np.nan),  # nothing -> NaN
        ]
    )
    se = bootstrap_se(draws)
    assert se[0] == 4.0 / NORMAL_IQR
    assert np.isnan(se[1]) and np.isnan(se[2]) and np.isnan(se[4])
    assert se[3] == 2.0 / NORMAL_IQR
    assert bootstrap_se(col) == 4.0 / NORMAL_IQR


def test_uniform_critical_value_hand_example():
    draws = np.array(
        [
            [1.0, -4.0, 100.0],
            [-3.0, 2.0, 100.0],
            [0.5, np.nan, 100.0],
            [2.0, 10.0, 100.0],
            [np.nan, np.nan, 100.0],
        ]
    )
    se = np.array([1.0, 2.0, np.nan])  # third column is degenerate and ignored
    # T_b = max(|d1| / 1, |d2| / 2) = [2, 3, 0.5, 5]; the all-NaN row is dropped
    assert uniform_critical_value(draws, se, 0.5) == 2.0  # k = ceil(4 * 0.5) = 2
    assert uniform_critical_value(draws, se, 0.3) == 3.0  # k = ceil(4 * 0.7) = 3
    assert uniform_critical_value(draws, se, 0.05) == 5.0  # k = ceil(4 * 0.95) = 4
    assert uniform_critical_value(draws, se, 0.9) == 0.5  # k = ceil(4 * 0.1) = 1
    assert np.isnan(uniform_critical_value(draws, np.full(3, np.nan), 0.05))


def test_uniform_critical_value_no_warnings_and_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(uniform_critical_value(np.ones((3, 2)), [0.0, 0.0], 0.05))
        assert np.isnan(bootstrap_se(np.array([[np.inf], [np.inf]]))[0])
    with pytest.raises(InvalidOptionError):
        uniform_critical_value(np.ones((3, 2)), [1.0], 0.05)
    for alpha in (0.0, 1.0, -0.1, True, "0.05"):
        with pytest.raises(InvalidOptionError):
            uniform_critical_value(np.ones((3, 2)), [1.0, 1.0], alpha)


def test_bootstrap_pipeline_end_to_end():
    # the multiplier bootstrap of a mean: its se must be close to sd / sqrt(n)
    rng = np.random.default_rng(5)
    n, b = 400, 999
    infl = rng.standard_normal((n, 2)) * [1.0, 3.0]
    v = mammen_multipliers(11, keys_from_values(np.arange(n)), 0, b)
    draws = v.T @ infl / np.sqrt(n)  # sqrt(n) * (theta* - theta), shape (B, 2)
    se = bootstrap_se(draws)
    assert se == pytest.approx(infl.std(axis=0), rel=0.1)
    crit = uniform_critical_value(draws, se, 0.05)
    assert 1.96 < crit < 2.6
