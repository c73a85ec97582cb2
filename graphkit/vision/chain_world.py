"""A synthetic chain world with planted important frames, the test bed for
:mod:`graphkit.vision.r2rise` (our construction, following the paper notes' prototype).

The world has ``n_states`` test states visited once each per episode and ``n_actions`` actions;
the return is the number of states where the learner picks the demonstrator's action (0 to
``n_states``). Demonstrations are ``(state, action)`` rows of an optimal demonstrator. Three
*critical* test states appear only inside one planted ``block``-frame block each, so dropping that
block makes the learner guess there; three *decoy* states are equally rare (one planted block each)
but never visited at test time, so their blocks are worthless. All other frames are filler over
the remaining test states, each seen hundreds of times, so no filler block matters.

Two black boxes are provided: :class:`TabularBC` (majority action per state, uniform over actions
for an unseen state, evaluated by its exact expected return) and :class:`TreeBC`, a scikit-learn
decision tree on the integer state (an unseen state inherits a neighbour's action, which the
action layout ``s mod n_actions`` makes wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphkit.errors import GraphError


@dataclass
class ChainWorld:
    """Demonstrations plus the ground truth of which blocks matter.

    Attributes:
        demos: one (length, 2) int array of ``(state, action)`` rows per demonstration.
        n_states: test states ``0 .. n_states-1``; decoys are numbered after them.
        n_actions: number of actions.
        optimal: (n_states + n_decoys,) the demonstrator's action per state.
        critical_blocks: flat block indices (as in ``r2rise.make_blocks``) of the planted
            critical blocks.
        decoy_blocks: flat block indices of the decoy blocks.
        block: frames per block.
    """

    demos: list[np.ndarray]
    n_states: int
    n_actions: int
    optimal: np.ndarray
    critical_blocks: list[int]
    decoy_blocks: list[int]
    block: int
    critical_states: list[int] = field(default_factory=list)

    @property
    def n_total_states(self) -> int:
        return len(self.optimal)

    def evaluate(self, model: Any) -> float:
        """Return of a learner: a (states × actions) probability table (expected return) or an
        object with ``predict`` on integer states."""
        states = np.arange(self.n_states)
        if isinstance(model, np.ndarray):
            return float(model[states, self.optimal[states]].sum())
        pred = np.asarray(model.predict(states.reshape(-1, 1).astype(np.float64)))
        return float((pred == self.optimal[states]).sum())


def make_chain_world(n_demos: int = 20, length: int = 1000, block: int = 10, n_states: int = 20,
                     n_actions: int = 4, n_critical: int = 3, n_decoys: int = 3,
                     seed: int = 0) -> ChainWorld:
    """Build a chain world with ``n_critical`` planted and ``n_decoys`` decoy blocks.

    Args:
        n_demos: demonstrations (official R2RISE: 20).
        length: frames per demonstration (official: 1000); a multiple of ``block``.
        block: frames per block (official: 10).
        n_states: test states; needs ``n_states - n_critical >= 2``.
        n_actions: actions (≥ 2).
        n_critical: critical states, each seen only inside one planted block.
        n_decoys: decoy states, each seen only inside one block, never tested.
        seed: layout seed.
    """
    if length % block or length < block:
        raise GraphError(f"length: must be a positive multiple of block={block}, got {length}")
    if n_actions < 2 or n_states - n_critical < 2 or n_critical < 0 or n_decoys < 0:
        raise GraphError(f"n_states/n_actions/n_critical: need n_actions >= 2 and n_states - "
                         f"n_critical >= 2, got {n_states}/{n_actions}/{n_critical}")
    rng = np.random.default_rng(seed)
    per_demo = length // block
    n_special = n_critical + n_decoys
    if n_special > n_demos * per_demo:
        raise GraphError("n_critical + n_decoys: more planted blocks than blocks")
    # critical states are non-adjacent so a tree's neighbour fallback is always another state
    candidates = rng.permutation(np.arange(1, n_states - 1, 2))
    if n_critical > len(candidates):
        raise GraphError(f"n_critical: at most {len(candidates)} for n_states={n_states}")
    critical = sorted(int(s) for s in candidates[:n_critical])
    decoys = list(range(n_states, n_states + n_decoys))
    optimal = np.arange(n_states + n_decoys) % n_actions
    filler = np.setdiff1d(np.arange(n_states), critical)
    states = rng.choice(filler, size=(n_demos, length))
    planted = rng.choice(n_demos * per_demo, size=n_special, replace=False)
    for flat, s in zip(planted, critical + decoys):
        d, b = divmod(int(flat), per_demo)
        states[d, b * block:(b + 1) * block] = s
    demos = [np.stack([row, optimal[row]], axis=1) for row in states]
    return ChainWorld(demos=demos, n_states=n_states, n_actions=n_actions, optimal=optimal,
                      critical_blocks=[int(b) for b in planted[:n_critical]],
                      decoy_blocks=[int(b) for b in planted[n_critical:]], block=block,
                      critical_states=critical)


def _rows(kept: Sequence[np.ndarray]) -> np.ndarray:
    parts = [np.asarray(k).reshape(-1, 2) for k in kept]
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)


class TabularBC:
    """Behaviour cloning by majority vote per state; unseen states act uniformly at random.

    Args:
        n_states: total number of states (test and decoy).
        n_actions: number of actions.
    """

    def __init__(self, n_states: int, n_actions: int) -> None:
        self.n_states = n_states
        self.n_actions = n_actions

    def __call__(self, kept: Sequence[np.ndarray]) -> np.ndarray:
        rows = _rows(kept)
        counts = np.bincount(rows[:, 0] * self.n_actions + rows[:, 1],
                             minlength=self.n_states * self.n_actions)
        counts = counts.reshape(self.n_states, self.n_actions).astype(np.float64)
        best = counts == counts.max(1, keepdims=True)
        return best / best.sum(1, keepdims=True)


class TreeBC:
    """Behaviour cloning with a scikit-learn decision tree on the integer state.

    Args:
        random_state: the tree's seed.
    """

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def __call__(self, kept: Sequence[np.ndarray]) -> Any:
        from sklearn.tree import DecisionTreeClassifier
        rows = _rows(kept)
        # a learner trained on too little must still act: fall back to a constant policy
        if len(rows) == 0:
            rows = np.zeros((1, 2), dtype=np.int64)
        # identical rows only reweight the tree, so fit on unique rows with counts (faster)
        uniq, counts = np.unique(rows, axis=0, return_counts=True)
        tree = DecisionTreeClassifier(random_state=self.random_state)
        return tree.fit(uniq[:, :1].astype(np.float64), uniq[:, 1], sample_weight=counts)
