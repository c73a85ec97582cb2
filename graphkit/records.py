"""Run records: the shared convention of the benchmarks and of the CLI's ``--out/--resume``.

Each run appends one record to ``benchmarks/results/<topic>.jsonl``::

    {"method", "dataset", "protocol", "seed", "metrics": {...}, "seconds", "device",
     "machine", "versions": {...}, "commit", "time"}

``python -m benchmarks.report`` turns those files into the tables of ``docs/benchmarks.md``
(mean ± std over seeds). Records are written atomically (a temp file, then a rename), so a killed
run never leaves a half-written line, and under an exclusive lock on a sidecar ``<file>.lock``
(POSIX ``flock``), so benchmark processes running side by side never lose each other's records;
:func:`done_seeds` lets a rerun resume where it stopped.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from graphkit.runtime import _json_default, atomic_path


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine(device: torch.device | str | None = None) -> str:
    """A short description: CPU model and core count, plus the GPU name when ``device`` is CUDA."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores"
    if device is not None and torch.device(device).type == "cuda":
        desc = f"{torch.cuda.get_device_name(torch.device(device))}; {desc}"
    return desc


def versions() -> dict[str, str]:
    import numpy
    import sklearn
    import torch_geometric

    import graphkit
    return {"graphkit": graphkit.__version__, "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "numpy": numpy.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}


def make_record(method: str, dataset: str, protocol: str, seed: int | None,
                metrics: dict[str, Any], seconds: float, device: torch.device | str = "cpu",
                **extra: Any) -> dict[str, Any]:
    """One benchmark record; ``extra`` keys (hyperparameters, notes) are kept as they are."""
    return {"method": method, "dataset": dataset, "protocol": protocol, "seed": seed,
            "metrics": metrics, "seconds": seconds, "device": str(device),
            "machine": machine(device), "versions": versions(), "commit": git_commit(),
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **extra}


def read_records(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` for a read-modify-write of ``path``. The rewrite
    is atomic on its own; without the lock two processes appending at once could each rewrite
    the file from the same old content and one record would be lost. No-op without ``fcntl``."""
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic but unlocked
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` to the JSONL file ``path`` atomically (rewrite to a temp file, rename)
    and under a file lock, so concurrent writers do not lose records."""
    path = Path(path)
    with _locked(path):
        old = path.read_text() if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        with atomic_path(path) as tmp:
            tmp.write_text(old + json.dumps(record, default=_json_default) + "\n")


def done_seeds(path: str | Path, **match: Any) -> set[int]:
    """Seeds already recorded in ``path`` for records whose fields equal ``match`` (for resume)."""
    return {r["seed"] for r in read_records(path)
            if all(r.get(k) == v for k, v in match.items())}


def drop_records(path: str | Path, **match: Any) -> None:
    """Remove the records matching ``match`` (to rerun a configuration from scratch)."""
    path = Path(path)
    with _locked(path):
        keep = [r for r in read_records(path)
                if not all(r.get(k) == v for k, v in match.items())]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in keep))


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], Any], *, warmup: int = 1, repeats: int = 5,
            device: torch.device | str | None = None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs;
    CUDA work is synchronized before each clock read."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and population standard deviation (the convention of the papers we compare with)."""
    vals = [float(v) for v in values]
    if not vals:
        return float("nan"), float("nan")
    mean = sum(vals) / len(vals)
    return mean, (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
