"""NAIVEATTACK vs DOORPING on distilled sklearn digits (graphkit.vision.distill_backdoor).

Usage: ``python -m benchmarks.vision_distill_backdoor [--quick] [--seeds 0 1 2] [--dc]
[--resume]``. One record per (attack, seed) in ``benchmarks/results/vision_distill_backdoor.jsonl``:
CTA, ASR on non-target test images, ASR including target-class images (the released code's
convention) and the final trigger's L∞ norm in pixel units (a valid image has L∞ ≤ 1).

Protocol "dd-known-init": DD, MLP 64-128-10, 10 steps × 1 image/class × 3 epochs, 300 outer
iterations, same init for distillation and evaluation, 2×2 trigger, 5 % poisoning, target 0,
stratified 67/33 split; DOORPING trigger updates capped at 200 Adam steps (the released code
allows 1000; with an unclipped trigger every update runs to the cap, so 1000 would cost 5× the CPU
time). ``--dc`` adds protocol "dc": DC gradient matching, ConvNet width 16, 10 images/class,
30 iterations (CPU budget), 3 evaluation networks × 300 epochs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.harness import RESULTS, append_record, done_seeds, make_record
from graphkit.runtime import resolve_device
from graphkit.vision.distill import DCConfig, DDConfig
from graphkit.vision.distill_backdoor import run_attack

OUT = RESULTS / "vision_distill_backdoor.jsonl"
VARIANTS = [("clean", False, "clean"), ("naive", False, "naiveattack"),
            ("doorping", False, "doorping (code-faithful, unclipped)"),
            ("doorping", True, "doorping (trigger clipped to [0,1])")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="seed 0, 60 iterations (smoke run; written as protocol *-quick)")
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--dc", action="store_true", help="also run the DC protocol")
    parser.add_argument("--resume", action="store_true", help="skip recorded (method, seed)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    device = resolve_device(args.device)
    protocols = [("dd", "dd-known-init")] + ([("dc", "dc")] if args.dc else [])
    for method, protocol in protocols:
        if args.quick:
            protocol += "-quick"
        for attack, clip, name in VARIANTS:
            skip = done_seeds(args.out, method=name, protocol=protocol) if args.resume else set()
            for seed in seeds:
                if seed in skip:
                    continue
                dd = DDConfig(iterations=60 if args.quick else 300)
                dc = DCConfig(iterations=10 if args.quick else 30)
                res = run_attack(attack, method, clip_trigger=clip, portion=0.05,
                                 trigger_size=2, target=0, seed=seed, dd_config=dd,
                                 dc_config=dc, trigger_steps=200,
                                 eval_epochs=100 if args.quick else 300, device=device)
                metrics = {k: res[k] for k in ("cta", "asr", "asr_incl_target",
                                               "trigger_linf_pixels")}
                print(f"[{protocol}] {name:40s} seed {seed}: CTA {res['cta']:.3f} "
                      f"ASR {res['asr']:.3f} (incl. target {res['asr_incl_target']:.3f}) "
                      f"trigger L∞ {res['trigger_linf_pixels']:.3g} px "
                      f"({res['seconds']:.0f}s)", flush=True)
                append_record(args.out, make_record(
                    name, "sklearn-digits", protocol, seed, metrics, res["seconds"], device,
                    attack=attack, clip_trigger=clip, portion=0.05, trigger_size=2, target=0,
                    trigger_steps=200, n_poison=res["n_poison"],
                    iterations=dd.iterations if method == "dd" else dc.iterations))


if __name__ == "__main__":
    main()
