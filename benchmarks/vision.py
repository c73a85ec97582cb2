"""Run every vision adapter benchmark (``benchmarks/vision_<module>.py``) in turn.

Usage: ``python -m benchmarks.vision [--only emo qsfm ...] [--quick]``. Each module writes its
records to ``benchmarks/results/vision_<module>.jsonl``; render them with
``python -m benchmarks.report``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

from graphkit.vision import SUBMODULES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--quick", action="store_true", help="fewer seeds/steps (smoke run)")
    args = parser.parse_args()
    for name in args.only or SUBMODULES:
        module_name = f"benchmarks.vision_{name}"
        if importlib.util.find_spec(module_name) is None:
            print(f"[vision] {name}: no benchmark module yet")
            continue
        print(f"[vision] {name}")
        importlib.import_module(module_name).main(["--quick"] if args.quick else [])


if __name__ == "__main__":
    main()
