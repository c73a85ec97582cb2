"""Shared fixtures. Real datasets come from ``GRAPHKIT_DATA`` or ``../shared/datasets``; processed
files go to a per-session temporary cache so the suite never writes into the data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "datasets"


def shared_root() -> Path | None:
    env = os.environ.get("GRAPHKIT_DATA")
    for candidate in (Path(env) if env else None, SHARED):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = tmp_path_factory.mktemp("graphkit-cache")
    old = os.environ.get("GRAPHKIT_CACHE")
    os.environ["GRAPHKIT_CACHE"] = str(cache)
    # xdist runs one worker per core: keep each worker single-threaded so they do not fight.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
    yield
    if old is None:
        os.environ.pop("GRAPHKIT_CACHE", None)
    else:
        os.environ["GRAPHKIT_CACHE"] = old


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The read-only real-data root; tests that need it skip when it is absent."""
    root = shared_root()
    if root is None:
        pytest.skip("real datasets not found (set GRAPHKIT_DATA or provide ../shared/datasets)")
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
