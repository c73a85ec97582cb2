"""Explain BA-Shapes motif nodes with NSEG and score the explanations.

Run: ``python examples/nseg_ba_shapes.py`` (about a minute on one CPU core).
"""

from graphkit.data import load
from graphkit.explain import NSEG, groundtruth_metrics, necessity_sufficiency, train_node_model

data = load("ba-shapes")
model, info = train_node_model(data, "gcn", seed=0, epochs=1000, device="cpu")
print(f"GCN test accuracy {info['test_acc']:.3f}")
res = NSEG(epochs=300, alpha=0.005, beta=1.0).explain(model, data.x, data.edge_index,
                                                      index=range(300, 700, 10))
print(necessity_sufficiency(model, res, kind="topk", value=12) | {"pn_each": "...",
                                                                 "ps_each": "..."})
print(groundtruth_metrics(res, data.edge_index, data.edge_mask, k=6))
