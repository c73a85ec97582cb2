"""Read the PGExplainer ``syn*.pkl`` files without ever running arbitrary pickle code."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from graphkit.errors import GraphError

# The only globals a numpy-array pickle needs; anything else is refused before it is imported.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) not in _ALLOWED:
            raise GraphError(
                f"refusing to unpickle {module}.{name}: only numpy arrays are allowed in "
                "explainer dataset files"
            )
        if module.startswith("numpy.core") or module.startswith("numpy._core"):
            from numpy._core import multiarray  # numpy >= 2
            return getattr(multiarray, name)
        return getattr(np, name)


def load_numpy_pickle(path: str | Path) -> object:
    """Unpickle ``path`` admitting only numpy array reconstruction; raise :class:`GraphError`
    for any other global and for truncated or corrupt files."""
    raw = Path(path).read_bytes()
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except GraphError:
        raise
    except Exception as exc:  # corrupt stream: EOFError, UnpicklingError, ValueError, ...
        raise GraphError(f"{path}: not a readable numpy pickle ({type(exc).__name__}: {exc})") \
            from None
