"""GLANCE on the synthetic walker: pose pre-training vs scratch vs mean, GLANCE on vs off.

Usage: ``python -m benchmarks.vision_glance [--quick] [--resume] [--seeds 0 1 2]``.
Records go to ``benchmarks/results/vision_glance.jsonl`` (one per seed). The default
configuration is the CI-sized one of ``tests/vision/test_glance.py``; ``--quick`` runs one seed.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.harness import RESULTS, append_record, done_seeds, make_record
from graphkit.runtime import resolve_device
from graphkit.vision.glance import gait_protocol

OUT = RESULTS / "vision_glance.jsonl"
CONFIG = dict(n_pretrain=100, n_labelled=100, n_test=100, frames=6, size=24, width=12,
              pose_steps=250, pose_batch=32, epochs=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--resume", action="store_true", help="skip recorded seeds")
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    device = resolve_device(args.device)
    protocol = ("walker " + ", ".join(f"{k}={v}" for k, v in CONFIG.items()))
    for seed in seeds:
        if args.resume and seed in done_seeds(OUT, method="glance-gait", protocol=protocol):
            continue
        start = time.perf_counter()
        metrics = gait_protocol(seed, device=device, **CONFIG)
        append_record(OUT, make_record("glance-gait", "synthetic-walker", protocol, seed,
                                       metrics, time.perf_counter() - start, device))
        print(f"seed {seed}: " + ", ".join(f"{k}={v:.3g}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
