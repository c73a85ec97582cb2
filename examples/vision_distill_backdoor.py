"""Backdoor a distilled dataset: NAIVEATTACK vs DOORPING on sklearn digits (DD, ~1–2 min CPU).

    python examples/vision_distill_backdoor.py [--iterations 150]

The attacker distils digits into 100 synthetic images (10 DD steps × 1 image per class) while
poisoning 5 % of the real data with a 2×2 trigger; the victim replays the distilled steps and gets
a model that is accurate on clean digits (CTA) and maps triggered digits to class 0 (ASR). Always
read the ASR together with the trigger's L∞ norm: DOORPING's released code never clips the trigger,
and its trigger ends far outside the valid pixel range [0, 1].
"""

from __future__ import annotations

import argparse

from graphkit.vision.distill import DDConfig
from graphkit.vision.distill_backdoor import run_attack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs = [("clean", False), ("naive", False), ("doorping", False), ("doorping", True)]
    for attack, clip in runs:
        res = run_attack(attack, "dd", clip_trigger=clip, portion=0.05, trigger_size=2,
                         seed=args.seed, dd_config=DDConfig(iterations=args.iterations),
                         trigger_steps=50, device="auto")
        label = attack + (" (clipped)" if clip else "")
        print(f"{label:20s} CTA {res['cta']:.3f}  ASR {res['asr']:.3f}  "
              f"trigger L∞ {res['trigger_linf_pixels']:.3g} px  valid={res['trigger_valid']}")


if __name__ == "__main__":
    main()
