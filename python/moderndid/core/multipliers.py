"""Counter-based Mammen multipliers for the multiplier bootstrap.

Every multiplier is a pure function of ``(seed, key, draw)``: the 64-bit ``seed`` of the
bootstrap run, the 64-bit ``key`` of a unit or cluster identifier and the 0-based ``draw``
index. Nothing depends on the order of the units, on which other units are generated in the
same call, on how the draws are split into blocks, or on the engine (in memory, Spark, Dask)
or language (Python, Scala) that generates them. The exact definition, with golden values to
check a port against, is in ``docs/multipliers.md``; in short::

    mix(z)      = splitmix64 finaliser (64-bit wrap-around arithmetic)
    unit_state  = mix(key XOR mix(seed + GAMMA))
    u           = mix(unit_state + (draw + 1) * GAMMA)          (mod 2**64)
    multiplier  = MAMMEN_HIGH if (u >> 11) >= MAMMEN_THRESHOLD else MAMMEN_LOW

with ``GAMMA = 0x9E3779B97F4A7C15``. Draw ``b`` of a unit is the ``(b + 1)``-th output of a
SplitMix64 generator started at ``unit_state``. ``(u >> 11) >= MAMMEN_THRESHOLD`` is exactly
``(u >> 11) * 2**-53 >= MAMMEN_P_LOW`` because ``MAMMEN_P_LOW * 2**53`` is an integer.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from moderndid.errors import InvalidOptionError

__all__ = [
    "FNV1A64_OFFSET",
    "FNV1A64_PRIME",
    "GOLDEN_GAMMA",
    "MAMMEN_HIGH",
    "MAMMEN_LOW",
    "MAMMEN_P_LOW",
    "MAMMEN_THRESHOLD",
    "fnv1a64",
    "keys_from_values",
    "mammen_high_mask",
    "mammen_multipliers",
    "mix64",
    "seed_from_random_state",
    "unit_states",
]

_SQRT5 = math.sqrt(5.0)
#: Mammen's lower point, (1 - sqrt(5)) / 2 = -0.6180339887498949 (-0x1.3c6ef372fe950p-1).
MAMMEN_LOW: float = (1.0 - _SQRT5) / 2.0
#: Mammen's upper point, (1 + sqrt(5)) / 2 = 1.618033988749895 (0x1.9e3779b97f4a8p+0).
MAMMEN_HIGH: float = (1.0 + _SQRT5) / 2.0
#: Probability of the lower point, (1 + sqrt(5)) / (2 sqrt(5)) = 0.7236067977499789.
MAMMEN_P_LOW: float = (1.0 + _SQRT5) / (2.0 * _SQRT5)
#: ``MAMMEN_P_LOW * 2**53`` (an exact integer): a draw is high iff ``(u >> 11) >= threshold``.
MAMMEN_THRESHOLD: int = int(MAMMEN_P_LOW * 2.0**53)
assert float(MAMMEN_THRESHOLD) == MAMMEN_P_LOW * 2.0**53 == 6517670609419126

#: The golden-ratio increment of SplitMix64, floor(2**64 / phi) rounded to odd.
GOLDEN_GAMMA: int = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1

#: FNV-1a 64-bit offset basis and prime.
FNV1A64_OFFSET: int = 0xCBF29CE484222325
FNV1A64_PRIME: int = 0x100000001B3

_U = np.uint64
_GAMMA_U = _U(GOLDEN_GAMMA)
_M1_U, _M2_U = _U(0xBF58476D1CE4E5B9), _U(0x94D049BB133111EB)  # splitmix64 multipliers
_S11, _S27, _S30, _S31 = _U(11), _U(27), _U(30), _U(31)
_THRESHOLD_U = _U(MAMMEN_THRESHOLD)
_FNV_PRIME_U = _U(FNV1A64_PRIME)

#: Elements (unit x draw) generated per block: two uint64 scratch buffers of 1 MiB each.
_BLOCK_ELEMENTS = 1 << 17


def _mix_inplace(z: NDArray[np.uint64], tmp: NDArray[np.uint64]) -> None:
    """Splitmix64 finaliser applied in place to ``z``; ``tmp`` is scratch of the same shape.

    uint64 array arithmetic wraps modulo 2**64 (numpy does not warn for arrays); the
    ``errstate`` keeps it silent should a numpy version ever start to.
    """
    with np.errstate(over="ignore"):
        np.right_shift(z, _S30, out=tmp)
        np.bitwise_xor(z, tmp, out=z)
        np.multiply(z, _M1_U, out=z)
        np.right_shift(z, _S27, out=tmp)
        np.bitwise_xor(z, tmp, out=z)
        np.multiply(z, _M2_U, out=z)
        np.right_shift(z, _S31, out=tmp)
        np.bitwise_xor(z, tmp, out=z)


def mix64(values: Any) -> NDArray[np.uint64]:
    """Splitmix64 finaliser, element-wise, with 64-bit wrap-around arithmetic.

    ``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
    z ^= z >> 31`` -- a bijection of the 64-bit integers.

    Parameters
    ----------
    values : array_like of integers
        Integer keys; signed values are taken as their two's-complement bits.

    Returns
    -------
    numpy.ndarray of uint64
        A new array of the same shape.
    """
    z = np.array(_as_uint64(values, "values"), dtype=np.uint64, copy=True)
    _mix_inplace(z, np.empty_like(z))
    return z


def seed_from_random_state(random_state: Any) -> int:
    """Turn a user ``random_state`` into the 64-bit seed of the multiplier streams.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        ``None`` draws fresh entropy from :class:`numpy.random.SeedSequence`; a non-negative
        int is used modulo 2**64 (so the same int gives the same multipliers in every engine
        and language); a :class:`numpy.random.Generator` supplies one uint64 draw (and is
        advanced by it).

    Returns
    -------
    int
        The seed, in ``[0, 2**64)``.

    Raises
    ------
    InvalidOptionError
        For a negative int, a bool, or any other type.
    """
    if random_state is None:
        state = np.random.SeedSequence().generate_state(1, dtype=np.uint64)
        return int(state[0])
    if isinstance(random_state, (bool, np.bool_)):
        raise InvalidOptionError(
            "random_state must be None, a non-negative int or a numpy.random.Generator, "
            f"got the bool {random_state!r}."
        )
    if isinstance(random_state, numbers.Integral):
        value = int(random_state)
        if value < 0:
            raise InvalidOptionError(f"random_state must be a non-negative int, got {value}.")
        return value & _MASK64
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**64, dtype=np.uint64))
    raise InvalidOptionError(
        "random_state must be None, a non-negative int or a numpy.random.Generator, "
        f"got {type(random_state).__name__}."
    )


def fnv1a64(data: bytes | str) -> int:
    """FNV-1a 64 of one byte string (a ``str`` is hashed as its UTF-8 bytes); scalar reference."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    h = FNV1A64_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV1A64_PRIME) & _MASK64
    return h


def keys_from_values(values: Any) -> NDArray[np.uint64]:
    """Stable 64-bit keys for unit or cluster identifiers.

    * integers (any integer or bool dtype, or floats that are all integral) map to the bits
      of their int64 two's-complement value, read as uint64 (``-1 -> 2**64 - 1``; uint64
      input is kept as is);
    * strings and bytes (numpy ``str`` / ``bytes`` / object arrays, pyarrow string or binary
      arrays, chunked or dictionary-encoded) map to the FNV-1a 64 hash of their UTF-8 bytes.

    The key depends on the identifier's *type*: ``7`` and ``"7"`` get different keys, so every
    engine must see the identifier column with the same type.

    Parameters
    ----------
    values : array_like or pyarrow.Array or pyarrow.ChunkedArray
        One-dimensional identifiers, without missing values.

    Returns
    -------
    numpy.ndarray of uint64
        One key per value.

    Raises
    ------
    InvalidOptionError
        For missing values, non-integral or non-finite floats, mixed numbers and strings,
        integers outside the 64-bit range, or an unsupported type.
    """
    if isinstance(values, pa.ChunkedArray):
        parts = [_keys_from_arrow(chunk) for chunk in values.chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    if isinstance(values, pa.Array):
        return _keys_from_arrow(values)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidOptionError(
            f"identifiers must be one-dimensional, got an array of shape {arr.shape}."
        )
    kind = arr.dtype.kind
    if kind in "iub":
        return _int_bits(arr)
    if kind == "f":
        return _keys_from_floats(arr)
    if kind in "USTO":
        # via Python objects: pyarrow would cut numpy fixed-width strings at the first NUL
        return _keys_from_objects(arr.astype(object, copy=False))
    raise InvalidOptionError(
        f"identifiers must be integers or strings, got numpy dtype {arr.dtype}."
    )


def _int_bits(arr: NDArray[Any]) -> NDArray[np.uint64]:
    if arr.dtype == np.uint64:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "u":  # smaller unsigned: zero-extension equals the int64 value
        return arr.astype(np.uint64)
    return np.ascontiguousarray(arr.astype(np.int64)).view(np.uint64)


def _keys_from_floats(arr: NDArray[Any]) -> NDArray[np.uint64]:
    x = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        raise InvalidOptionError(
            f"identifiers contain missing or infinite values ({int(bad.sum())} of {x.size}, "
            f"e.g. {float(x[bad][0])}); unit and cluster identifiers must be complete."
        )
    bad = (x != np.trunc(x)) | (x < -(2.0**63)) | (x >= 2.0**63)
    if bad.any():
        raise InvalidOptionError(
            "float identifiers must be integral and within the int64 range, but "
            f"{int(bad.sum())} of {x.size} are not (e.g. {float(x[bad][0])})."
        )
    return x.astype(np.int64).view(np.uint64)


def _keys_from_objects(arr: NDArray[Any]) -> NDArray[np.uint64]:
    if arr.size == 0:
        return np.empty(0, dtype=np.uint64)
    try:
        converted = pa.array(arr, from_pandas=True)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return _keys_from_objects_slow(arr)
    return _keys_from_arrow(converted)


def _keys_from_objects_slow(arr: NDArray[Any]) -> NDArray[np.uint64]:
    """Element-wise fallback (huge Python ints, mixed int / float objects, ...)."""
    is_text = [isinstance(v, (str, bytes)) for v in arr]
    if all(is_text):
        return _fnv1a64_arrow(pa.array([v.encode() if isinstance(v, str) else v for v in arr]))
    if any(is_text):
        raise InvalidOptionError(
            "identifiers must be all integers or all strings, but they mix strings with "
            f"values of type {type(arr[is_text.index(False)]).__name__}."
        )
    out = np.empty(arr.size, dtype=np.uint64)
    for i, v in enumerate(arr):
        if isinstance(v, (numbers.Integral, np.bool_)):
            iv = int(v)
        elif isinstance(v, numbers.Real) and math.isfinite(v) and float(v).is_integer():
            iv = int(float(v))
        else:
            raise InvalidOptionError(
                "identifiers must be integers (or integral floats) or strings, without "
                f"missing values; got {v!r} ({type(v).__name__}) at position {i}."
            )
        if not -(2**63) <= iv < 2**64:
            raise InvalidOptionError(
                f"integer identifier {iv} at position {i} is outside the 64-bit range."
            )
        out[i] = iv & _MASK64
    return out


def _keys_from_arrow(arr: pa.Array) -> NDArray[np.uint64]:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arr.null_count:
        raise InvalidOptionError(
            f"identifiers contain {arr.null_count} missing value(s); unit and cluster "
            "identifiers must be complete."
        )
    t = arr.type
    if pa.types.is_null(t):  # only reachable when empty
        return np.empty(0, dtype=np.uint64)
    if any(is_text(t) for is_text in _ARROW_TEXT_TYPES):
        return _fnv1a64_arrow(arr)
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return _int_bits(arr.to_numpy(zero_copy_only=False))
    if pa.types.is_floating(t):
        return _keys_from_floats(arr.to_numpy(zero_copy_only=False))
    raise InvalidOptionError(f"identifiers must be integers or strings, got arrow type {t}.")


_ARROW_TEXT_TYPES = (
    pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view, pa.types.is_binary,
    pa.types.is_large_binary, pa.types.is_binary_view, pa.types.is_fixed_size_binary,
)


def _fnv1a64_arrow(arr: pa.Array) -> NDArray[np.uint64]:
    """FNV-1a 64 of every value of a string / binary arrow array, vectorised over rows.

    Rows are sorted by decreasing byte length so that at byte position ``j`` the rows still
    being hashed are a prefix; the loop runs over byte positions (as many iterations as the
    longest value) and its total work is the total number of bytes.
    """
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    if not pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.large_binary())
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64, count=arr.offset + n + 1)[arr.offset :]
    data_buffer = buffers[2]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None and data_buffer.size
        else np.empty(0, dtype=np.uint8)
    )
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")
    starts = offsets[:-1][order]
    neg_sorted = -lengths[order]  # ascending
    max_len = int(-neg_sorted[0])
    active = np.searchsorted(neg_sorted, -np.arange(max_len, dtype=np.int64), side="left")
    h = np.full(n, FNV1A64_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(max_len):
            k = int(active[j])
            hk = h[:k]
            np.bitwise_xor(hk, data[starts[:k] + j], out=hk)
            np.multiply(hk, _FNV_PRIME_U, out=hk)
    out = np.empty(n, dtype=np.uint64)
    out[order] = h
    return out


def _check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise InvalidOptionError(
            f"seed must be an int in [0, 2**64) (see seed_from_random_state), got {seed!r}."
        )
    value = int(seed)
    if not 0 <= value < 2**64:
        raise InvalidOptionError(f"seed must be in [0, 2**64), got {value}.")
    return value


def _as_uint64(keys: Any, name: str) -> NDArray[np.uint64]:
    arr = np.asarray(keys)
    if arr.dtype.kind not in "iu":
        raise InvalidOptionError(
            f"{name} must be an integer array (use keys_from_values for identifiers), "
            f"got dtype {arr.dtype}."
        )
    return _int_bits(arr)


def _check_range(start: Any, stop: Any) -> tuple[int, int]:
    for name, v in (("start", start), ("stop", stop)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise InvalidOptionError(f"{name} must be an int, got {v!r}.")
    start, stop = int(start), int(stop)
    if not 0 <= start <= stop < 2**63:
        raise InvalidOptionError(f"need 0 <= start <= stop, got start={start}, stop={stop}.")
    return start, stop


def unit_states(seed: int, keys: Any) -> NDArray[np.uint64]:
    """Per-unit stream states ``mix(key XOR mix(seed + GOLDEN_GAMMA))``.

    Parameters
    ----------
    seed : int
        Seed in ``[0, 2**64)``, e.g. from :func:`seed_from_random_state`.
    keys : array_like of integers
        Keys from :func:`keys_from_values` (signed integers are taken as their bits).

    Returns
    -------
    numpy.ndarray of uint64, shape (n_keys,)
    """
    seed_state = mix64([(_check_seed(seed) + GOLDEN_GAMMA) & _MASK64])[0]
    k = _as_uint64(keys, "keys").reshape(-1)
    z = np.bitwise_xor(k, seed_state)
    _mix_inplace(z, np.empty_like(z))
    return z


def _generate(seed: int, keys: Any, start: Any, stop: Any, as_multipliers: bool) -> NDArray[Any]:
    """The (n_keys, stop - start) high-masks or multipliers, filled block by block."""
    start, stop = _check_range(start, stop)
    dtype = np.float64 if as_multipliers else np.bool_
    out = np.empty((int(np.size(keys)), stop - start), dtype=dtype)
    states = unit_states(seed, keys)
    n, n_draws = out.shape
    if n == 0 or n_draws == 0:
        return out
    cols = min(n_draws, _BLOCK_ELEMENTS)
    rows = max(1, _BLOCK_ELEMENTS // cols)
    z_buf = np.empty(rows * cols, dtype=np.uint64)
    t_buf = np.empty_like(z_buf)
    for c0 in range(0, n_draws, cols):
        c1 = min(c0 + cols, n_draws)
        with np.errstate(over="ignore"):
            # increments (b + 1) * GAMMA mod 2**64 for the draws b = start + c0 .. start + c1 - 1
            inc = np.arange(start + c0 + 1, start + c1 + 1, dtype=np.uint64) * _GAMMA_U
        width = c1 - c0
        for r0 in range(0, n, rows):
            r1 = min(r0 + rows, n)
            shape = (r1 - r0, width)
            size = shape[0] * width
            z = z_buf[:size].reshape(shape)
            t = t_buf[:size].reshape(shape)
            with np.errstate(over="ignore"):
                np.add(states[r0:r1, None], inc[None, :], out=z)
            _mix_inplace(z, t)
            np.right_shift(z, _S11, out=z)
            if as_multipliers:
                out[r0:r1, c0:c1] = np.where(z >= _THRESHOLD_U, MAMMEN_HIGH, MAMMEN_LOW)
            else:
                np.greater_equal(z, _THRESHOLD_U, out=out[r0:r1, c0:c1])
    return out


def mammen_high_mask(seed: int, keys: Any, start: int, stop: int) -> NDArray[np.bool_]:
    """Which multipliers are Mammen's upper point, for draws ``start .. stop - 1``.

    Parameters
    ----------
    seed : int
        Seed in ``[0, 2**64)``, e.g. from :func:`seed_from_random_state`.
    keys : array_like of integers
        One key per unit / cluster, from :func:`keys_from_values`.
    start, stop : int
        Half-open range of 0-based draw indices, ``0 <= start <= stop``.

    Returns
    -------
    numpy.ndarray of bool, shape (len(keys), stop - start)
        ``True`` where the multiplier is :data:`MAMMEN_HIGH`, ``False`` where it is
        :data:`MAMMEN_LOW`. Entry ``[i, j]`` depends only on ``(seed, keys[i], start + j)``.

    Notes
    -----
    Work is done in blocks of about 131 072 entries, so the only large allocation is the
    result (1 byte per entry); request a range of draws at a time to bound it.
    """
    return _generate(seed, keys, start, stop, as_multipliers=False)


def mammen_multipliers(seed: int, keys: Any, start: int, stop: int) -> NDArray[np.float64]:
    """Mammen multipliers for draws ``start .. stop - 1``.

    Parameters
    ----------
    seed, keys, start, stop
        As for :func:`mammen_high_mask`.

    Returns
    -------
    numpy.ndarray of float64, shape (len(keys), stop - start)
        Each entry is exactly :data:`MAMMEN_LOW` (probability :data:`MAMMEN_P_LOW`) or
        :data:`MAMMEN_HIGH`: mean 0, variance 1 (Mammen, 1993). Entry ``[i, j]`` depends
        only on ``(seed, keys[i], start + j)``.

    Notes
    -----
    The result takes 8 bytes per entry; for many units request a range of draws at a time.
    """
    return _generate(seed, keys, start, stop, as_multipliers=True)
