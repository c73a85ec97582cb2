"""Read foreign pickle files (PGExplainer's ``syn*.pkl``, Planetoid's ``ind.*``) without ever
running arbitrary pickle code: only an explicit list of harmless globals may be referenced."""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np
import scipy.sparse as sp

from graphkit.errors import GraphError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

NUMPY_ONLY: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
# Planetoid's ind.* files: CSR feature matrices and a dict-of-lists graph.
PLANETOID = {
    **NUMPY_ONLY,
    ("scipy.sparse.csr", "csr_matrix"): sp.csr_matrix,
    ("scipy.sparse._csr", "csr_matrix"): sp.csr_matrix,
    ("collections", "defaultdict"): collections.defaultdict,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], allowed: dict[tuple[str, str], Any], **kw: Any):
        super().__init__(file, **kw)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise GraphError(f"refusing to unpickle {module}.{name}: only numpy/scipy arrays "
                             "are allowed in dataset files") from None


def restricted_load(file: IO[bytes], allowed: dict[tuple[str, str], Any] = NUMPY_ONLY,
                    *, source: str = "pickle", encoding: str = "latin1") -> Any:
    """Unpickle ``file`` admitting only the globals in ``allowed``; :class:`GraphError` for any
    other global and for truncated or corrupt streams."""
    try:
        return _RestrictedUnpickler(file, allowed, encoding=encoding).load()
    except GraphError:
        raise
    except Exception as exc:  # corrupt stream: EOFError, UnpicklingError, ValueError, ...
        raise GraphError(f"{source}: not a readable pickle of arrays "
                         f"({type(exc).__name__}: {exc})") from None


def load_numpy_pickle(path: str | Path) -> object:
    """Unpickle ``path`` admitting only numpy array reconstruction."""
    return restricted_load(io.BytesIO(Path(path).read_bytes()), NUMPY_ONLY, source=str(path))


class PlanetoidPickle:
    """Stands in for the ``pickle`` module inside PyG's Planetoid reader while graphkit processes
    raw files, so that reader can only build arrays, CSR matrices and dicts of lists."""

    @staticmethod
    def load(file: IO[bytes], encoding: str = "latin1") -> Any:
        source = getattr(file, "path", "ind.* file")
        out = restricted_load(file, PLANETOID, source=source, encoding=encoding)
        if sp.issparse(out):
            _check_csr(out, source)
        return out


def _check_csr(matrix: sp.spmatrix, source: str) -> None:
    """Unpickling restores CSR arrays without any check, and scipy's own ``check_format`` does not
    catch every inconsistency; corrupt ones would make scipy's C code read out of bounds later."""
    def bad(why: str) -> GraphError:
        return GraphError(f"{source}: corrupt sparse matrix ({why})")

    if matrix.format != "csr":
        raise bad(f"expected CSR, got {matrix.format}")
    rows, cols = matrix.shape
    indptr, indices, data = matrix.indptr.astype(np.int64), matrix.indices, matrix.data
    if indptr.ndim != 1 or indptr.size != rows + 1:
        raise bad(f"indptr has {indptr.size} entries for {rows} rows")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise bad("indptr is not a non-decreasing sequence from 0")
    if indptr[-1] != indices.size or indices.size != data.size:
        raise bad("indptr, indices and data disagree in length")
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        raise bad(f"column index outside [0, {cols})")
