"""``graphkit info``: versions, device, data root and which datasets are present locally."""

from __future__ import annotations

import argparse
import platform
from typing import Any

import torch

NAME = "info"
HELP = "versions, device (CUDA or CPU), data root and locally present datasets"
ORDER = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=None, help="dataset root (default: GRAPHKIT_DATA or "
                                                     "~/.cache/graphkit)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy
    import scipy
    import sklearn
    import torch_geometric

    import graphkit
    from graphkit.data import data_root, names, spec
    from graphkit.data.paths import cache_dir
    root = data_root(args.root)
    present = []
    for name in names():
        expected = spec(name).expected(root)
        if expected and all(p.is_file() for p in expected):
            present.append(name)
    try:
        import torch_scatter  # noqa: F401
        scatter = True
    except ImportError:
        scatter = False
    result = {
        "graphkit": graphkit.__version__, "python": platform.python_version(),
        "torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
        "numpy": numpy.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
        "torch_scatter": scatter,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "data_root": str(root), "cache_dir": str(cache_dir()), "datasets_present": present,
    }
    if not args.json:
        for key, value in result.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            print(f"{key:>16}: {shown}")
    return result
