"""Explain a behaviour-cloning learner's demonstrations with R2RISE.

Run: ``python examples/vision_r2rise.py`` (a few seconds on a CPU).
"""

from graphkit.vision import r2rise
from graphkit.vision.chain_world import TabularBC, make_chain_world

world = make_chain_world(seed=0)  # 20 demos x 1000 frames, 3 planted blocks, 3 decoys
learner = TabularBC(world.n_total_states, world.n_actions)  # any train_fn(kept) -> model
ex = r2rise.explain(world.demos, learner, world.evaluate, n_masks=200, p=0.5, block=10,
                    estimator="contrast", seed=0)
print("planted blocks:", sorted(world.critical_blocks))
for b in ex.top(5):
    demo, start, stop = ex.blocks[b]
    print(f"block {b:4d} (demo {demo}, frames {start}-{stop - 1}): {ex.block_importance[b]:+.3f}")
print("decoy ranks:", ex.ranks()[world.decoy_blocks].tolist())
sum_ranks = (-ex.importance("sum")).argsort(kind="stable").argsort() + 1
print("official 'sum' ranks of the planted blocks:", sum_ranks[world.critical_blocks].tolist())
print(r2rise.effectiveness(ex, world.demos, learner, world.evaluate, k=20))
