"""EMO benchmarks: exact parameter counts and multiply-adds of EMO-1M/2M/5M/6M at 224x224, and a
small EMO trained on scikit-learn's digits upsampled to 32x32.

Usage: ``python -m benchmarks.vision_emo [--quick] [--seeds 0 1 2]``; records go to
``benchmarks/results/vision_emo.jsonl``. ImageNet accuracy (71.5 / 75.1 / 78.4 / 79.0 top-1 in
the paper) cannot be checked offline: no ImageNet, no released weights here.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.harness import RESULTS, append_record, make_record, time_fn
from graphkit.runtime import resolve_device
from graphkit.vision import emo
from graphkit.vision.cnn_zoo import accuracy, fit_classifier, load_digits_tensors

OUT = RESULTS / "vision_emo.jsonl"
# the paper's fvcore GFLOPs (counts norms too) and the official logs' parameter counts
PAPER = {"emo_1m": (0.261, 1_361_168), "emo_2m": (0.439, 2_377_472),
         "emo_5m": (0.903, 5_108_848), "emo_6m": (0.961, 6_168_496)}
TINY = dict(depths=(1, 1, 2, 1), stem_dim=16, embed_dims=(16, 24, 32, 48),
            exp_ratios=(2, 2, 2, 2), dim_heads=(16, 16, 16, 16))


def sizes(device: torch.device) -> None:
    for name, (fv, official) in PAPER.items():
        model = getattr(emo, name)().to(device).eval()
        x = torch.randn(1, 3, 224, 224, device=device)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(x)
        with torch.no_grad():
            secs = time_fn(lambda m=model, x=x: m(x), warmup=1, repeats=3, device=device)
        append_record(OUT, make_record(name, "imagenet-shape", "1000 classes, 1x3x224x224, "
                                       "FlopCounterMode (conv+matmul MACs)", None, {
                                           "params": sum(p.numel() for p in model.parameters()),
                                           "params_official": official,
                                           "macs_G": fc.get_total_flops() / 2e9,
                                           "fvcore_paper_G": fv, "latency_bs1_s": secs},
                                       secs, device))


def digits(seed: int, epochs: int, device: torch.device) -> None:
    x_tr, y_tr, x_te, y_te = load_digits_tensors(size=32, channels=3, seed=0)
    torch.manual_seed(seed)
    model = emo.EMO(num_classes=10, **TINY)
    start = time.perf_counter()
    fit_classifier(model, x_tr, y_tr, epochs=epochs, lr=4e-3, weight_decay=0.05, seed=seed,
                   device=device)
    secs = time.perf_counter() - start
    append_record(OUT, make_record("emo-tiny", "digits-32x32",
                                   f"depths 1-1-2-1, dims 16-24-32-48; "
                                   f"AdamW 4e-3 wd .05 onecycle {epochs} ep bs64; 70/30 split",
                                   seed, {"test_acc": accuracy(model, x_te, y_te),
                                          "params": sum(p.numel() for p in model.parameters())},
                                   secs, device))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    sizes(device)
    for seed in args.seeds[:1] if args.quick else args.seeds:
        digits(seed, args.epochs, device)
    print(f"[vision_emo] records appended to {OUT}")


if __name__ == "__main__":
    main()
