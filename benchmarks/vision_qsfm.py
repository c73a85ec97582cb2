"""QSFM (reconstruction) benchmarks: digits pruning without fine-tuning, planted duplicates, and
ResNet-56 / MobileNetV2 compression counts.

Usage: ``python -m benchmarks.vision_qsfm [--quick] [--seeds 0 1 2]``; records go to
``benchmarks/results/vision_qsfm.jsonl``. The paper's CIFAR-10 accuracy (0.54% top-1 loss on
ResNet-56) cannot be checked offline (no CIFAR, no trained weights): only its compression ratios
are reproduced, on randomly initialised networks.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.harness import RESULTS, append_record, make_record
from graphkit.runtime import resolve_device
from graphkit.vision import qsfm
from graphkit.vision.cnn_zoo import (
    accuracy,
    digits_cnn,
    fit_classifier,
    load_digits_tensors,
    plant_duplicates,
)

OUT = RESULTS / "vision_qsfm.jsonl"
TRAIN = dict(epochs=40, lr=3e-3, batch_size=128, schedule="onecycle")
DIGITS = ("digits cnn 32-64, AdamW 3e-3 onecycle 40 ep bs128; prune 25% of conv0, no fine-tune, "
          "calib 256 train images; 70/30 split")
RESNET56_RATIOS = (0.4375, 0.5, 0.625)



def size_metrics(rep) -> dict[str, float]:
    """The size figures of a pruning report, as benchmark metrics."""
    return {"params_before": rep.params_before, "params_after": rep.params_after,
            "macs_before_M": rep.macs_before / 1e6, "macs_after_M": rep.macs_after / 1e6,
            "params_reduction": rep.params_reduction, "macs_reduction": rep.macs_reduction}

def digits(seed: int, device: torch.device) -> None:
    x_tr, y_tr, x_te, y_te = load_digits_tensors(seed=seed)
    torch.manual_seed(seed)
    start = time.perf_counter()
    model = fit_classifier(digits_cnn(), x_tr, y_tr, seed=seed, device=device, **TRAIN)
    base = accuracy(model, x_te, y_te)
    append_record(OUT, make_record("unpruned", "digits", DIGITS, seed, {
        "test_acc": base, "params": qsfm.count_params(model)}, time.perf_counter() - start,
        device))
    calib = x_tr[:256]
    for crit in ("qsfm", "l1", "random"):
        start = time.perf_counter()
        draws = range(5) if crit == "random" else range(1)
        accs = [accuracy(qsfm.prune(model, calib, 0.25, ["0"], criterion=crit, seed=s)[0],
                         x_te, y_te) for s in draws]
        acc = sum(accs) / len(accs)
        append_record(OUT, make_record(f"{crit}-25%", "digits", DIGITS, seed, {
            "test_acc": acc, "drop_points": 100 * (base - acc)},
            (time.perf_counter() - start) / len(accs), device))
    dup = torch.randperm(32, generator=torch.Generator().manual_seed(seed))[:8].tolist()
    wide = plant_duplicates(model.cpu(), dup, seed)
    start = time.perf_counter()
    pruned, report = qsfm.prune(wide, calib, 8 / 40, ["0"])
    with torch.no_grad():
        diff = float((pruned(x_te) - wide(x_te)).abs().max())
        dead = set(torch.nonzero(model[1](model[0](calib)).var((0, 2, 3)) <= 1e-10)
                   .flatten().tolist())
    removed = set(report.removed["0"])
    # a channel that is dead on the calibration batch is as redundant as a planted copy
    append_record(OUT, make_record("qsfm-planted", "digits", "32 filters + 8 planted copies "
                                   "(function-preserving); remove 8", seed, {
                                       "copies_removed": len(removed & set(range(32, 40))),
                                       "dead_removed": len(removed & dead),
                                       "only_redundant_removed": float(
                                           removed <= set(range(32, 40)) | dead),
                                       "max_logit_diff": diff}, time.perf_counter() - start,
                                   "cpu"))


def compression(device: torch.device) -> None:
    torch.manual_seed(0)
    model = qsfm.resnet56().to(device)
    ratios = {f"blocks.{b}": RESNET56_RATIOS[b // 9] for b in range(27)}
    start = time.perf_counter()
    _, rep = qsfm.prune(model, torch.randn(16, 3, 32, 32), ratio=ratios)
    append_record(OUT, make_record("qsfm", "resnet56-cifar-shape", "random init, per-stage "
                                   f"inner-conv ratios {RESNET56_RATIOS}; paper: -48.7% FLOPs, "
                                   "-57.9% params", 0, size_metrics(rep),
                                   time.perf_counter() - start, device))
    model = qsfm.mobilenet_v2().to(device)
    start = time.perf_counter()
    _, rep = qsfm.prune(model, torch.randn(4, 3, 224, 224), ratio=0.3)
    append_record(OUT, make_record("qsfm", "mobilenetv2-imagenet-shape", "random init, 30% of "
                                   "every expanded block at the depthwise output", 0,
                                   size_metrics(rep),
                                   time.perf_counter() - start, device))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    for seed in args.seeds[:1] if args.quick else args.seeds:
        digits(seed, device)
    compression(device)
    print(f"[vision_qsfm] records appended to {OUT}")


if __name__ == "__main__":
    main()
