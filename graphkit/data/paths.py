"""Where graphkit looks for datasets and where it writes processed files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Processed files and downloads: ``GRAPHKIT_CACHE`` or ``~/.cache/graphkit``."""
    return Path(os.environ.get("GRAPHKIT_CACHE") or Path.home() / ".cache" / "graphkit")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the dataset root: explicit ``root`` > ``GRAPHKIT_DATA`` > :func:`cache_dir`."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GRAPHKIT_DATA")
    return Path(env).expanduser() if env else cache_dir()
