"""R2RISE: model-agnostic frame importance for imitation learning.

Paper: Boyuan Zheng, Jianlong Zhou, Chunjie Liu, Yiqiao Li, Fang Chen, "Explaining Imitation
Learning through Frames", arXiv 2301.01088, https://arxiv.org/abs/2301.01088 (official code:
github.com/u6766669/R2RISE).

The algorithm, as the official code runs it: draw a random block mask over the demonstrations
(blocks of ``block`` consecutive frames, each kept with probability ``p``), retrain the black-box
imitation learner *from scratch* on the kept frames, evaluate its environment return ``R_k``, and
accumulate. Three estimators turn the masks ``M`` (N×B) and returns ``R`` (N) into a block score:

* ``"sum"``: ``Σ_k R_k M_k``, the official update, unnormalized.
* ``"rise"``: the same divided by ``N·p`` (RISE's normalization); a constant factor, so it
  ranks blocks exactly as ``"sum"`` does.
* ``"contrast"`` (default): ``E[R | block kept] − E[R | block dropped]``.

Why ``"contrast"`` is the default: ``Σ_k R_k M_k ≈ n_kept·R̄ + effect``, where ``n_kept`` is a
Binomial(N, p) count. Its noise, ``≈ √(N p (1−p))·R̄``, is the same for every block and grows with
the mean return, while the signal of one important block is only ``≈ N p · Δ``. With a typical
return of 19 and a block worth 0.75 return, at N = 200 the noise (~134) is bigger than the signal
(75), so the sum ranks blocks mostly by how often they happened to be kept. The contrast subtracts
the baseline inside each block's own kept/dropped split, so only the effect (and the much smaller
noise of the *other* blocks' effects) remains. Dividing by ``N·p`` (``"rise"``) does not help: it
rescales every block by the same constant.

Long runs: the retrain/evaluate loop can be checkpointed to a ``.npz`` file (written atomically)
and resumed; mask ``k`` depends only on ``(seed, k)``, so a resumed or extended run draws exactly
the masks a single run would have drawn. Retraining can run in a thread or process pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphkit.errors import GraphError
from graphkit.runtime import atomic_path

ESTIMATORS = ("contrast", "sum", "rise")


@dataclass
class Explanation:
    """The outcome of :func:`explain`.

    Attributes:
        block_importance: (B,) score per block, in the order of ``blocks``.
        frame_importance: one array per demonstration, each frame carrying its block's score.
        blocks: (B, 3) int array of ``(demo, start, stop)`` frame ranges.
        masks: (N, B) bool, the keep masks that were evaluated.
        returns: (N,) returns of the learner retrained under each mask.
        estimator: the estimator behind ``block_importance``.
        p: keep probability used to draw the masks.
    """

    block_importance: np.ndarray
    frame_importance: list[np.ndarray]
    blocks: np.ndarray
    masks: np.ndarray
    returns: np.ndarray
    estimator: str
    p: float

    def importance(self, estimator: str) -> np.ndarray:
        """Block scores under another estimator, from the same masks and returns."""
        return block_scores(self.masks, self.returns, estimator, self.p)

    def ranks(self) -> np.ndarray:
        """Rank of each block, 1 = most important (ties broken by block order)."""
        order = np.argsort(-self.block_importance, kind="stable")
        ranks = np.empty_like(order)
        ranks[order] = np.arange(1, len(order) + 1)
        return ranks

    def top(self, k: int) -> np.ndarray:
        """Indices of the ``k`` most important blocks, most important first."""
        return np.argsort(-self.block_importance, kind="stable")[:k]

    def frame_map(self) -> np.ndarray:
        """The frame importance as a (demos × frames) array; needs equal-length demonstrations."""
        lengths = {len(f) for f in self.frame_importance}
        if len(lengths) != 1:
            raise GraphError(f"frame_map: demonstrations have different lengths {sorted(lengths)}")
        return np.stack(self.frame_importance)


def block_scores(masks: np.ndarray, returns: np.ndarray, estimator: str = "contrast",
                 p: float = 0.5) -> np.ndarray:
    """Score every block from keep masks (N×B) and returns (N).

    Args:
        masks: (N, B) keep masks, 1 = block kept.
        returns: (N,) return of the learner retrained under each mask.
        estimator: ``"contrast"``, ``"sum"`` or ``"rise"`` (see the module docstring).
        p: keep probability (only ``"rise"`` uses it).

    Returns:
        (B,) float scores; a block that was always kept or always dropped scores 0 under
        ``"contrast"`` (no evidence either way).
    """
    if estimator not in ESTIMATORS:
        raise GraphError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
    m = np.asarray(masks, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or r.shape != (m.shape[0],):
        raise GraphError(f"masks/returns: expected (N, B) and (N,), got {m.shape} and {r.shape}")
    if estimator == "sum":
        return r @ m
    if estimator == "rise":
        return (r @ m) / (len(r) * p)
    n_kept = m.sum(0)
    n_drop = len(r) - n_kept
    kept_mean = np.divide(r @ m, n_kept, out=np.zeros(m.shape[1]), where=n_kept > 0)
    drop_mean = np.divide(r @ (1 - m), n_drop, out=np.zeros(m.shape[1]), where=n_drop > 0)
    return np.where((n_kept > 0) & (n_drop > 0), kept_mean - drop_mean, 0.0)


def make_blocks(lengths: Sequence[int], block: int) -> np.ndarray:
    """(B, 3) ``(demo, start, stop)`` ranges cutting each demonstration into ``block``-frame
    blocks (the last block of a demonstration may be shorter)."""
    rows = [(d, s, min(s + block, n)) for d, n in enumerate(lengths) for s in range(0, n, block)]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def draw_mask(seed: int, k: int, n_blocks: int, p: float) -> np.ndarray:
    """Keep mask number ``k``: depends only on ``(seed, k)``, so resumed runs reproduce it."""
    return np.random.default_rng([seed, k]).random(n_blocks) < p


def apply_mask(demos: Sequence[Any], blocks: np.ndarray, mask: np.ndarray) -> list[Any]:
    """The demonstrations restricted to the kept blocks' frames (order kept)."""
    keep = [np.zeros(len(d), dtype=bool) for d in demos]
    for (d, s, e), m in zip(blocks, mask):
        if m:
            keep[d][s:e] = True
    return [_take(demo, k) for demo, k in zip(demos, keep)]


def drop_blocks(demos: Sequence[Any], blocks: np.ndarray, drop: Sequence[int]) -> list[Any]:
    """The demonstrations without the blocks whose indices are in ``drop``."""
    mask = np.ones(len(blocks), dtype=bool)
    mask[np.asarray(list(drop), dtype=np.int64)] = False
    return apply_mask(demos, blocks, mask)


def _take(demo: Any, keep: np.ndarray) -> Any:
    if isinstance(demo, np.ndarray):
        return demo[keep]
    if hasattr(demo, "index_select") and hasattr(demo, "device"):  # a torch tensor
        import torch
        return demo[torch.as_tensor(keep, device=demo.device)]
    return [frame for frame, k in zip(demo, keep) if k]


def _check(demos: Sequence[Any], n_masks: int, p: float, block: int, estimator: str) -> list[int]:
    if demos is None or len(demos) == 0:
        raise GraphError("demos: empty; pass at least one demonstration (a sequence of frames)")
    lengths = []
    for i, demo in enumerate(demos):
        try:
            n = len(demo)
        except TypeError:
            raise GraphError(f"demos[{i}]: expected a sequence of frames, "
                             f"got {type(demo).__name__}") from None
        if n == 0:
            raise GraphError(f"demos[{i}]: empty demonstration (0 frames)")
        lengths.append(n)
    if not (isinstance(p, (int, float)) and 0.0 < p < 1.0):
        raise GraphError(f"p: keep probability must lie in (0, 1), got {p!r}")
    if int(block) != block or block < 1:
        raise GraphError(f"block: must be a positive integer, got {block!r}")
    if int(n_masks) != n_masks or n_masks < 1:
        raise GraphError(f"n_masks: must be a positive integer, got {n_masks!r}")
    if estimator not in ESTIMATORS:
        raise GraphError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
    return lengths


def _run_one(train_fn: Callable[[list[Any]], Any], eval_fn: Callable[[Any], float],
             demos: Sequence[Any], blocks: np.ndarray, mask: np.ndarray) -> float:
    return float(eval_fn(train_fn(apply_mask(demos, blocks, mask))))


def _load_checkpoint(path: str | os.PathLike, meta: np.ndarray) -> dict[int, float]:
    with np.load(path, allow_pickle=False) as z:
        if not np.array_equal(z["meta"], meta):
            raise GraphError(f"checkpoint: {os.fspath(path)!r} was written for other demos, p, "
                             "block or seed; delete it or pass another path")
        return {int(k): float(r) for k, r in zip(z["index"], z["returns"])}


def _save_checkpoint(path: str | os.PathLike, meta: np.ndarray, done: dict[int, float]) -> None:
    index = np.asarray(sorted(done), dtype=np.int64)
    with atomic_path(path) as tmp:
        # np.savez appends ".npz" to names without it; write through a file object instead.
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=meta, index=index,
                     returns=np.asarray([done[k] for k in index], dtype=np.float64))


def explain(demos: Sequence[Any], train_fn: Callable[[list[Any]], Any],
            eval_fn: Callable[[Any], float], n_masks: int, p: float = 0.5, block: int = 10,
            estimator: str = "contrast", seed: int = 0, *, n_workers: int = 1,
            backend: str = "thread", progress: bool = True,
            checkpoint: str | os.PathLike | None = None,
            checkpoint_every: int = 10) -> Explanation:
    """Frame and block importance of demonstrations for a black-box imitation learner.

    Args:
        demos: demonstrations, each a sequence of frames indexable along its first axis (a
            NumPy array or torch tensor of frames, or a list). Frames may be anything
            ``train_fn`` understands, e.g. ``(state, action)`` rows.
        train_fn: ``train_fn(kept_demos) -> model`` retrains the learner from scratch on the
            kept frames (same structure as ``demos``; a fully masked demonstration is empty).
        eval_fn: ``eval_fn(model) -> float``, the return of the retrained learner.
        n_masks: number of random masks N (the official code uses 700 for BC).
        p: probability of *keeping* a block, in (0, 1) (the official ``degradation_level``).
        block: frames per block (official: 10).
        estimator: ``"contrast"`` (default), ``"sum"`` (official) or ``"rise"``.
        seed: mask seed; mask ``k`` is a function of ``(seed, k)`` only.
        n_workers: retrain this many masks concurrently (``concurrent.futures``).
        backend: ``"thread"`` or ``"process"`` (process needs picklable functions and demos).
        progress: show a tqdm progress bar.
        checkpoint: optional ``.npz`` path; finished returns are saved there atomically every
            ``checkpoint_every`` masks and at the end, and a rerun resumes from it.
        checkpoint_every: save interval in finished masks.

    Returns:
        An :class:`Explanation` with per-block and per-frame importance.
    """
    lengths = _check(demos, n_masks, p, block, estimator)
    if backend not in ("thread", "process"):
        raise GraphError(f"backend: expected 'thread' or 'process', got {backend!r}")
    blocks = make_blocks(lengths, block)
    n_blocks = len(blocks)
    meta = np.asarray([seed, round(p * 1e9), block, *lengths], dtype=np.int64)
    done: dict[int, float] = {}
    if checkpoint is not None and os.path.exists(checkpoint):
        done = {k: r for k, r in _load_checkpoint(checkpoint, meta).items() if k < n_masks}
    todo = [k for k in range(n_masks) if k not in done]

    from tqdm.auto import tqdm
    bar = tqdm(total=n_masks, initial=len(done), desc="R2RISE masks", disable=not progress)
    since_save = 0

    def record(k: int, value: float) -> None:
        nonlocal since_save
        if not math.isfinite(value):
            raise GraphError(f"eval_fn: returned a non-finite return {value!r} for mask {k}")
        done[k] = value
        bar.update(1)
        since_save += 1
        if checkpoint is not None and since_save >= checkpoint_every:
            _save_checkpoint(checkpoint, meta, done)
            since_save = 0

    try:
        if n_workers <= 1:
            for k in todo:
                record(k, _run_one(train_fn, eval_fn, demos, blocks,
                                   draw_mask(seed, k, n_blocks, p)))
        else:
            pool_cls = cf.ThreadPoolExecutor if backend == "thread" else cf.ProcessPoolExecutor
            with pool_cls(max_workers=n_workers) as pool:
                futures = {pool.submit(_run_one, train_fn, eval_fn, demos, blocks,
                                       draw_mask(seed, k, n_blocks, p)): k for k in todo}
                for fut in cf.as_completed(futures):
                    record(futures[fut], fut.result())
    finally:
        bar.close()
        if checkpoint is not None and since_save:
            _save_checkpoint(checkpoint, meta, done)

    masks = np.stack([draw_mask(seed, k, n_blocks, p) for k in range(n_masks)])
    returns = np.asarray([done[k] for k in range(n_masks)], dtype=np.float64)
    scores = block_scores(masks, returns, estimator, p)
    frames = [np.zeros(n, dtype=np.float64) for n in lengths]
    for (d, s, e), v in zip(blocks, scores):
        frames[d][s:e] = v
    return Explanation(block_importance=scores, frame_importance=frames, blocks=blocks,
                       masks=masks, returns=returns, estimator=estimator, p=float(p))


def effectiveness(explanation: Explanation, demos: Sequence[Any],
                  train_fn: Callable[[list[Any]], Any], eval_fn: Callable[[Any], float],
                  k: int, n_random: int = 10, seed: int = 0) -> dict[str, float]:
    """The paper's effectiveness check: retrain without the ``k`` top-ranked blocks and without
    ``k`` random blocks; important blocks should cost more return.

    Returns:
        ``{"full", "without_top", "without_random", "without_random_std"}`` returns.
    """
    blocks = explanation.blocks
    if not 1 <= k <= len(blocks):
        raise GraphError(f"k: must lie in [1, {len(blocks)}], got {k!r}")
    full = float(eval_fn(train_fn(list(demos))))
    top = float(eval_fn(train_fn(drop_blocks(demos, blocks, explanation.top(k)))))
    rng = np.random.default_rng(seed)
    rand = [float(eval_fn(train_fn(drop_blocks(demos, blocks,
                                               rng.choice(len(blocks), k, replace=False)))))
            for _ in range(n_random)]
    return {"full": full, "without_top": top, "without_random": float(np.mean(rand)),
            "without_random_std": float(np.std(rand))}
