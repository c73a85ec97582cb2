"""RefT on synthetic shapes: base training, 5-shot fine-tuning, novel-class mask AP50.

A short run (about a minute on one CPU core) of the +Reference 1+2 variant; the full acceptance
experiment (three variants, three seeds, bootstrap CI) is ``python -m benchmarks.vision_reft``.
Usage: ``python examples/vision_reft.py [--variant baseline|ref1|ref12]
[--classifier support|linear] [--base-steps N]`` (the classifier choice applies to ref1 / ref12;
the baseline always has the linear class head).
"""

import argparse

import graphkit
from graphkit.vision import reft, shapes

parser = argparse.ArgumentParser()
parser.add_argument("--variant", default="ref12", choices=["baseline", "ref1", "ref12"])
parser.add_argument("--classifier", default="support", choices=list(reft.CLASSIFIERS))
parser.add_argument("--base-steps", type=int, default=200)
parser.add_argument("--ft-steps", type=int, default=50)
args = parser.parse_args()

device = graphkit.resolve_device("auto")
splits = shapes.fsis_splits(seed=0, k=5, num_test=100)
graphkit.seed_everything(0)
model = reft.RefT(reft.variant_config(args.variant, classifier=args.classifier))
reft.train_fsis(model, splits, seed=0, device=device,
                sched=reft.Schedule(base_steps=args.base_steps, ft_steps=args.ft_steps))
matches, gts = reft.evaluate_fsis(model, splits, device)
swapped, _ = reft.evaluate_fsis(model, splits, device, swap=tuple(splits.novel))
novel = [shapes.SHAPES[c] for c in splits.novel]
print(f"{args.variant}: novel {novel} mask AP50 {reft.mask_ap50(matches, gts, splits.novel):.3f}"
      f" (supports swapped: {reft.mask_ap50(swapped, gts, splits.novel):.3f}), "
      f"base mask AP50 {reft.mask_ap50(matches, gts, splits.base):.3f}")
