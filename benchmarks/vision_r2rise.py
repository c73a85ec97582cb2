"""R2RISE on the planted chain world: do the estimators find the planted blocks?

Usage: ``python -m benchmarks.vision_r2rise [--quick] [--resume] [--seeds 0 1 2 3 4]``.
Records go to ``benchmarks/results/vision_r2rise.jsonl`` (one per seed, learner, estimator).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.harness import RESULTS, append_record, done_seeds, make_record
from graphkit.vision import r2rise
from graphkit.vision.chain_world import TabularBC, TreeBC, make_chain_world

OUT = RESULTS / "vision_r2rise.jsonl"


def _ranks(scores: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return ranks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 100 masks")
    parser.add_argument("--resume", action="store_true", help="skip recorded seeds")
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--n-masks", type=int, default=None)
    args = parser.parse_args(argv)
    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2, 3, 4])
    n_masks = args.n_masks or (100 if args.quick else 200)
    protocol = f"chain world 20x1000 frames, N={n_masks}, p=0.5, block=10"
    for learner_name in ("tabular-bc", "tree-bc"):
        for seed in seeds:
            if args.resume and seed in done_seeds(OUT, method=f"r2rise-contrast/{learner_name}",
                                                  protocol=protocol):
                continue
            world = make_chain_world(seed=seed)
            learner = (TabularBC(world.n_total_states, world.n_actions)
                       if learner_name == "tabular-bc" else TreeBC())
            start = time.perf_counter()
            ex = r2rise.explain(world.demos, learner, world.evaluate, n_masks, seed=seed,
                                progress=False)
            seconds = time.perf_counter() - start
            eff = r2rise.effectiveness(ex, world.demos, learner, world.evaluate, k=20,
                                       n_random=10, seed=seed)
            for est in ("contrast", "sum"):
                ranks = _ranks(ex.importance(est))
                planted = ranks[world.critical_blocks]
                metrics = {"planted_in_top3": int((planted <= 3).sum()),
                           "worst_planted_rank": int(planted.max()),
                           "best_decoy_rank": int(ranks[world.decoy_blocks].min()),
                           "mean_masked_return": float(ex.returns.mean())}
                if est == "contrast":
                    metrics.update(return_without_top20=eff["without_top"],
                                   return_without_random20=eff["without_random"])
                append_record(OUT, make_record(f"r2rise-{est}/{learner_name}", "chain-world",
                                               protocol, seed, metrics, seconds, "cpu"))
                print(f"{learner_name} seed {seed} {est}: {metrics}")


if __name__ == "__main__":
    main()
