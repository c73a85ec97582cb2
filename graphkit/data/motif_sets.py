"""A synthetic graph-classification set whose two classes differ only in planted motifs.

Each graph is a random tree with constant node features, with 1-3 six-node units hung on random
tree nodes. Class 0 units are two triangles joined by an edge; class 1 units are two 4-cycles
sharing an edge. Both units have the same degree sequence and are joined to the tree the same way
(the anchor to both ends of the middle edge), so the two classes are indistinguishable by 1-WL
colour refinement (and hence by GCN, GIN and any other message-passing GNN on constant features)
while triangle counts separate them: the set MGNN's motif matrices are made for. Used by
``graphkit demo`` and the MGNN tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data, InMemoryDataset

from graphkit.data.registry import register
from graphkit.errors import GraphError

# Nodes 2 and 3 of each unit (its two degree-3 nodes, adjacent) are both joined to the anchor, so
# the anchor closes one triangle in either class and the colour refinement stays identical.
TRIANGLES = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (5, 3)]
SQUARES = [(0, 2), (2, 3), (3, 1), (1, 0), (3, 4), (4, 5), (5, 2)]
UNITS = (TRIANGLES, SQUARES)


class MotifSet(InMemoryDataset):
    """In-memory collection built by :func:`triangles_vs_squares`."""

    def __init__(self, graphs: list[Data]):
        super().__init__(None)
        self.data, self.slices = self.collate(graphs)


def planted_graph(label: int, gen: torch.Generator, min_tree: int = 8, max_tree: int = 16,
                  max_units: int = 3, anchors: list[int] | None = None,
                  tree: list[int] | None = None) -> Data:
    """One graph: a random tree plus ``label``'s units (``anchors``/``tree`` fix the layout)."""
    if tree is None:
        size = int(torch.randint(min_tree, max_tree + 1, (1,), generator=gen))
        tree = [int(torch.randint(0, v, (1,), generator=gen)) for v in range(1, size)]
    n = len(tree) + 1
    edges = [(parent, child) for child, parent in enumerate(tree, start=1)]
    if anchors is None:
        count = int(torch.randint(1, max_units + 1, (1,), generator=gen))
        anchors = torch.randint(0, n, (count,), generator=gen).tolist()
    for anchor in anchors:
        edges += [(n + a, n + b) for a, b in UNITS[label]] + [(anchor, n + 2), (anchor, n + 3)]
        n += 6
    ei = torch.tensor(edges, dtype=torch.long).t()
    ei = torch.cat([ei, ei.flip(0)], 1)
    return Data(x=torch.ones(n, 1), edge_index=ei, y=torch.tensor([label]), num_nodes=n)


@register("triangles-squares", kind="graph", aliases=("motif-set", "planted-motifs"),
          source="synthetic: trees with planted triangle pairs vs chorded 6-cycles (1-WL "
                 "equivalent classes)")
def triangles_vs_squares(root: Path | None = None, num_graphs: int = 400, seed: int = 0,
                         **_: Any) -> MotifSet:
    """``num_graphs`` graphs, balanced classes, deterministic in ``seed``."""
    if not isinstance(num_graphs, int) or num_graphs < 2:
        raise GraphError(f"num_graphs: expected an int >= 2, got {num_graphs!r}")
    gen = torch.Generator().manual_seed(seed)
    return MotifSet([planted_graph(i % 2, gen) for i in range(num_graphs)])
