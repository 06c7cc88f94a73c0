"""User-facing warnings attributed to the user's own line, not to moderndid internals."""

from __future__ import annotations

import inspect
import os
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue ``message`` from the first stack frame outside the moderndid package.

    A fixed ``stacklevel`` points at the wrong line as soon as the same check is reached
    from several entry points (``att_gt`` in memory, on Spark or Dask, ``ddd``); walking the
    stack attributes every warning to the caller's line.
    """
    level = 1
    frame = inspect.currentframe()
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    del frame  # frames hold references to their locals
    warnings.warn(message, category, stacklevel=level)
