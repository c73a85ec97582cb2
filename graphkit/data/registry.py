"""One registry for every dataset the papers use: :func:`load` resolves a name to a loader.

Names are case- and dash-insensitive (``"IMDB-BINARY"``, ``"imdb_binary"`` and ``"imdbbinary"``
are one name). Single graphs come back as :class:`torch_geometric.data.Data`, graph collections as
a PyG dataset. Raw files are read where they are; processed files always go to the cache directory
(:func:`graphkit.data.paths.cache_dir`), so a read-only data folder is never written to.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch_geometric.data import Data

from graphkit.data.paths import cache_dir, data_root
from graphkit.errors import GraphError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: Callable[..., Any]
    kind: str  # "node" (one graph) or "graph" (a collection)
    source: str
    aliases: tuple[str, ...] = ()
    expected: Callable[[Path], list[Path]] = field(default=lambda root: [])
    """Raw files this entry needs under a root; used by ``graphkit datasets`` and error messages."""


_REGISTRY: dict[str, DatasetSpec] = {}
_ALIASES: dict[str, str] = {}


def normalize(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def register(name: str, *, kind: str, source: str, aliases: tuple[str, ...] = (),
             expected: Callable[[Path], list[Path]] | None = None):
    """Decorator: register ``loader(root: Path, **kw)`` under ``name`` and ``aliases``."""

    def wrap(loader: Callable[..., Any]) -> Callable[..., Any]:
        spec = DatasetSpec(name, loader, kind, source, aliases,
                           expected or (lambda root: []))
        _REGISTRY[name] = spec
        for alias in (name, *aliases):
            _ALIASES[normalize(alias)] = name
        return loader

    return wrap


def names() -> list[str]:
    """Every registered dataset name (without aliases)."""
    return list(_REGISTRY)


def spec(name: str) -> DatasetSpec | None:
    key = _ALIASES.get(normalize(name))
    return _REGISTRY.get(key) if key else None


def load(name: str, root: str | os.PathLike | None = None, **kwargs: Any):
    """Load a dataset by registry name.

    Args:
        name: a registry name or alias (see ``graphkit datasets``); any other name is tried as a
            TUDataset name.
        root: the dataset root (explicit ``root`` > ``GRAPHKIT_DATA`` > ``~/.cache/graphkit``),
            laid out as ``ROOT/Planetoid/Cora/raw/...``, ``ROOT/TUDataset/MUTAG/raw/...``.
        **kwargs: passed to the loader (for example ``seed`` for synthetic graphs,
            ``download=False`` to fail at once when raw files are missing).

    Returns:
        a :class:`~torch_geometric.data.Data` for single-graph datasets, a PyG dataset for graph
        collections.
    """
    if not isinstance(name, str) or not name.strip():
        raise GraphError(f"dataset name: expected a non-empty string, got {name!r}")
    entry = spec(name)
    resolved = data_root(root)
    if entry is None:
        from graphkit.data.loaders import load_tu
        return load_tu(resolved, name=name.upper(), **kwargs)
    result = entry.loader(resolved, **kwargs)
    if isinstance(result, Data):
        from graphkit.data.validate import validate
        try:
            validate(result)
        except GraphError as exc:  # say which dataset the bad field came from
            raise GraphError(f"{entry.name}: the loaded graph is invalid: {exc}") from None
    return result


# --------------------------------------------------------------------------------------------
# PyG datasets whose raw files may sit in a read-only folder.

def _writable(path: Path) -> bool:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


def pyg_dataset(cls: type, root: Path, family: str, name: str, raw_dir_name: str,
                raw_files: list[str], *, download: bool = True, **kwargs: Any):
    """Instantiate PyG's ``cls(root=..., name=name)`` reading raw files in place.

    ``root/family/raw_dir_name/raw`` holds the raw files. Processing happens in a temporary folder
    of the cache whose ``raw`` is a link to the real one, and is renamed into place only when it
    finished, so an interrupted run never leaves a half-written cache that later loads.
    """
    raw_dir = root / family / raw_dir_name / "raw"
    missing = [f for f in raw_files if not (raw_dir / f).is_file()]
    if missing:
        return _download(cls, root, family, name, raw_dir, missing, download=download, **kwargs)
    key = hashlib.sha1(str(raw_dir.resolve()).encode()).hexdigest()[:12]
    work = cache_dir() / "processed" / key / family
    final = work / raw_dir_name
    if not (final / "processed").is_dir():
        tmp = work.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            (tmp / raw_dir_name).mkdir(parents=True)
            (tmp / raw_dir_name / "raw").symlink_to(raw_dir.resolve(), target_is_directory=True)
            cls(root=str(tmp), name=name, **kwargs)
            final.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp / raw_dir_name / "processed", final / "processed")
            except OSError:
                if not (final / "processed").is_dir():  # lost a race only if it now exists
                    raise
        except GraphError:
            raise
        except Exception as exc:
            raise GraphError(f"{family}/{name}: could not process the raw files in {raw_dir} "
                             f"({type(exc).__name__}: {exc})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    link = final / "raw"
    if not link.exists():
        try:
            link.symlink_to(raw_dir.resolve(), target_is_directory=True)
        except FileExistsError:
            pass
    return cls(root=str(work), name=name, **kwargs)


def _download(cls: type, root: Path, family: str, name: str, raw_dir: Path, missing: list[str],
              *, download: bool, **kwargs: Any):
    hint = (f"{family}/{name}: raw files missing: {', '.join(missing)}. Put them in {raw_dir} "
            f"(or set GRAPHKIT_DATA / root= to a folder laid out as "
            f"ROOT/{family}/{raw_dir.parent.name}/raw/)")
    if not download:
        raise GraphError(hint)
    target = (root if _writable(root) else cache_dir() / "downloads") / family
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        return cls(root=str(target), name=name, **kwargs)
    except Exception as exc:
        raise GraphError(f"{hint}; the download failed ({type(exc).__name__}: {exc})") from None
    finally:
        socket.setdefaulttimeout(old_timeout)
