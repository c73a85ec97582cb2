"""The benchmark harness: :mod:`graphkit.records` (records, atomic appends, resume, timing) plus
where the benchmark results live."""

from pathlib import Path

from graphkit.records import (  # noqa: F401  (re-exported for the benchmark scripts)
    append_record,
    done_seeds,
    drop_records,
    git_commit,
    machine,
    make_record,
    mean_std,
    read_records,
    time_fn,
    versions,
)

RESULTS = Path(__file__).resolve().parent / "results"
