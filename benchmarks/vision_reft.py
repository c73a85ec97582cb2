"""RefT acceptance experiment on synthetic shapes (graphkit.vision.reft).

Baseline (Mask2Former-lite + ft-full), +Reference 1, +Reference 1+2; same seeds, data and
schedule; K-shot fine-tuning; novel-class mask AP50 on 64×64 test images. The difference to the
baseline gets a paired bootstrap 95% CI over test images (resampled per seed, averaged over
seeds); "significant" only when the CI excludes 0. Each variant is also evaluated with the two
novel classes' support sets swapped (the baseline ignores supports, so it cannot change).

Usage: ``python -m benchmarks.vision_reft [--quick] [--seeds 0 1 2] [--classifier support|linear]
[--base-steps N] [--ft-steps N] [--resume] [--summary-only] [--calibrate]``.
Each (variant, seed) appends one record to ``benchmarks/results/vision_reft.jsonl`` (with the
per-image matches needed for the bootstrap); a summary record per comparison follows. Records are
keyed by a protocol label that names the schedule and, for ``--classifier support``, the
classifier of the support variants (the baseline always uses the linear class head).

``--calibrate``: schedule calibration that never touches the reported test sets: training seed
100, evaluated on the test images of data seed 1000 (a validation set); records are labelled
"calibration" and are not summarised.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.harness import RESULTS, append_record, done_seeds, make_record, read_records
from graphkit.runtime import resolve_device, seed_everything
from graphkit.vision import reft, shapes

PATH = RESULTS / "vision_reft.jsonl"
DATASET = "shapes-fsis-64"
VARIANTS = ("baseline", "ref1", "ref12")


def _pack(per_image: list) -> list:
    return [[np.round(s, 5).tolist(), lab.tolist(), tp.astype(int).tolist()]
            for s, lab, tp in per_image]


def _unpack(packed: list) -> list:
    return [(np.asarray(s, float), np.asarray(lab, int), np.asarray(tp, bool))
            for s, lab, tp in packed]


CALIB_SEED, CALIB_DATA_SEED = 100, 1000


def run_one(variant: str, seed: int, args: argparse.Namespace, device: torch.device) -> dict:
    splits = shapes.fsis_splits(seed, k=args.k, num_test=args.num_test)
    if args.calibrate:   # validation images from another data seed, never the reported test set
        splits.test = shapes.fsis_splits(CALIB_DATA_SEED, k=1, num_test=args.num_test).test
    seed_everything(seed)
    model = reft.RefT(reft.variant_config(variant, classifier=args.classifier))
    sched = reft.Schedule(base_steps=args.base_steps, ft_steps=args.ft_steps)
    start = time.perf_counter()
    log: list = []
    reft.train_fsis(model, splits, seed, sched, device, log)
    per_image, gts = reft.evaluate_fsis(model, splits, device)
    swapped, _ = reft.evaluate_fsis(model, splits, device, swap=tuple(splits.novel))
    seconds = time.perf_counter() - start
    metrics = {"novel_ap50": reft.mask_ap50(per_image, gts, splits.novel),
               "base_ap50": reft.mask_ap50(per_image, gts, splits.base),
               "novel_ap50_swapped": reft.mask_ap50(swapped, gts, splits.novel)}
    metrics["swap_drop"] = metrics["novel_ap50"] - metrics["novel_ap50_swapped"]
    return make_record(variant, DATASET, args.protocol, seed, metrics, seconds, device,
                       k=args.k, base_steps=args.base_steps, ft_steps=args.ft_steps,
                       num_test=args.num_test, classifier=model.cfg.classifier,
                       calibration=bool(args.calibrate),
                       final_loss=log[-1]["loss"] if log else None,
                       matches=_pack(per_image), matches_swapped=_pack(swapped),
                       gt_labels=[g.tolist() for g in gts], novel=splits.novel, base=splits.base)


def _ap(per_image: list, gts: list, classes: list, idx: np.ndarray) -> float:
    return reft.mask_ap50([per_image[i] for i in idx], [gts[i] for i in idx], classes)


def bootstrap_diff(runs_a: list[dict], runs_b: list[dict], key_a: str = "matches",
                   key_b: str = "matches", boot: int = 1000, seed: int = 0,
                   classes: str = "novel") -> tuple[float, float, float]:
    """Mean over seeds of AP50(a) − AP50(b) over the ``classes`` ("novel" or "base") and its
    paired 95% bootstrap CI (test images resampled with replacement within each seed, same
    indices for a and b)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for ra, rb in zip(runs_a, runs_b, strict=True):
        gts = [np.asarray(g, int) for g in ra["gt_labels"]]
        pairs.append((_unpack(ra[key_a]), _unpack(rb[key_b]), gts, ra[classes]))
    point = float(np.mean([_ap(a, g, nov, np.arange(len(g))) - _ap(b, g, nov, np.arange(len(g)))
                           for a, b, g, nov in pairs]))
    stats = []
    for _ in range(boot):
        diffs = []
        for a, b, g, nov in pairs:
            idx = rng.integers(0, len(g), len(g))
            diffs.append(_ap(a, g, nov, idx) - _ap(b, g, nov, idx))
        stats.append(np.nanmean(diffs))
    lo, hi = np.nanpercentile(stats, [2.5, 97.5])
    return point, float(lo), float(hi)


def summarize(args: argparse.Namespace) -> list[dict]:
    recs = [r for r in read_records(PATH) if r.get("protocol") == args.protocol
            and r.get("seed") is not None and "matches" in r]
    by = {(r["method"], r["seed"]): r for r in recs}
    seeds = sorted(s for s in args.seeds if all((v, s) in by for v in VARIANTS))
    out = []
    if not seeds:
        return out
    if args.base_classes:   # base-class AP50 of the support variants vs the baseline
        records = []
        for a in ("ref1", "ref12"):
            d, lo, hi = bootstrap_diff([by[(a, s)] for s in seeds],
                                       [by[("baseline", s)] for s in seeds], boot=args.boot,
                                       classes="base")
            sig = bool(lo > 0 or hi < 0)
            print(f"[reft] {a} - baseline (base classes): base AP50 diff {d:+.4f}, 95% CI "
                  f"[{lo:+.4f}, {hi:+.4f}] -> {'significant' if sig else 'not significant'}")
            records.append(make_record(
                f"{a} - baseline (base classes)", DATASET, args.protocol + " / paired bootstrap",
                None, {"base_ap50_diff": d, "ci_low": lo, "ci_high": hi,
                       "significant": float(sig)}, 0.0, "cpu", seeds=seeds, boot=args.boot))
        return records
    comparisons = [("ref1", "baseline", "matches"), ("ref12", "baseline", "matches"),
                   ("ref12", "ref1", "matches")]
    for a, b, key in comparisons:
        d, lo, hi = bootstrap_diff([by[(a, s)] for s in seeds], [by[(b, s)] for s in seeds],
                                   key, key, args.boot)
        out.append((f"{a} - {b}", d, lo, hi))
    for v in VARIANTS:  # support swap: normal − swapped, same model
        runs = [by[(v, s)] for s in seeds]
        d, lo, hi = bootstrap_diff(runs, runs, "matches", "matches_swapped", args.boot)
        out.append((f"{v}: normal - swapped supports", d, lo, hi))
    records = []
    for name, d, lo, hi in out:
        sig = bool(lo > 0 or hi < 0)
        print(f"[reft] {name}: novel AP50 diff {d:+.4f}, 95% CI [{lo:+.4f}, {hi:+.4f}]"
              f" -> {'significant' if sig else 'not significant'}")
        rec = make_record(name, DATASET, args.protocol + " / paired bootstrap", None,
                          {"novel_ap50_diff": d, "ci_low": lo, "ci_high": hi,
                           "significant": float(sig)}, 0.0, "cpu", seeds=seeds, boot=args.boot)
        records.append(rec)
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, tiny schedule (smoke run)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--classifier", default="support", choices=list(reft.CLASSIFIERS),
                        help="class head of the support variants (baseline: always linear)")
    parser.add_argument("--calibrate", action="store_true",
                        help=f"seed {CALIB_SEED}, validation images of data seed "
                             f"{CALIB_DATA_SEED}; not summarised")
    parser.add_argument("--base-steps", type=int, default=4000)  # the reported protocol
    parser.add_argument("--ft-steps", type=int, default=400)
    parser.add_argument("--num-test", type=int, default=200)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resume", action="store_true", help="skip (variant, seed) done")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--no-summary", action="store_true", help="runs only (for parallel seeds)")
    parser.add_argument("--base-classes", action="store_true",
                        help="with --summary-only: bootstrap the base-class AP50 differences")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.base_steps, args.ft_steps, args.num_test, args.boot = [0], 40, 10, 30, 100
    args.protocol = (f"K={args.k}, base {args.base_steps} + ft {args.ft_steps} steps, "
                     f"{args.num_test} test images")
    if args.classifier != "linear":   # the linear protocol keeps its old label
        args.protocol += f", support variants classifier={args.classifier}"
    if args.calibrate:
        args.seeds, args.no_summary = [CALIB_SEED], True
        args.protocol += (f" / calibration (seed {CALIB_SEED}, validation data seed "
                          f"{CALIB_DATA_SEED})")
    device = resolve_device(args.device)
    if not args.summary_only:
        for seed in args.seeds:
            for variant in args.variants:
                if args.resume and seed in done_seeds(PATH, method=variant,
                                                      protocol=args.protocol):
                    continue
                rec = run_one(variant, seed, args, device)
                append_record(PATH, rec)
                m = rec["metrics"]
                print(f"[reft] {variant} seed {seed}: novel AP50 {m['novel_ap50']:.4f} "
                      f"(swapped {m['novel_ap50_swapped']:.4f}), base AP50 {m['base_ap50']:.4f}"
                      f", {rec['seconds']:.0f}s", flush=True)
    if not args.no_summary:
        for rec in summarize(args):
            append_record(PATH, rec)


if __name__ == "__main__":
    main()
