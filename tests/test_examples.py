"""Every script in ``examples/`` runs to the end (the first code a user copies must not rot).

Each runs in its own process, as a user would start it, with shortened training where the script
takes a length argument; the numbers it prints are not checked here (the benchmarks own those).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_root

EXAMPLES = sorted((REPO / "examples").glob("*.py"))
# Shorter runs of the scripts that train for minutes by default.
SHORT_ARGS = {"ccgc_cora.py": ["--epochs", "30"], "vision_cmt.py": ["--steps", "20"]}
NEEDS_REAL_DATA = {"ccgc_cora.py"}


def test_shortened_examples_exist() -> None:
    assert len(EXAMPLES) >= 10
    assert set(SHORT_ARGS) <= {p.name for p in EXAMPLES}


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    if script.name in NEEDS_REAL_DATA:
        root = shared_root()
        if root is None:
            pytest.skip("real datasets not found")
        env["GRAPHKIT_DATA"] = str(root)
    # Run from a scratch folder so that nothing an example writes lands in the repository.
    proc = subprocess.run([sys.executable, str(script), *SHORT_ARGS.get(script.name, [])],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "an example should print what it found"
