"""The ``cv5-ref`` MGNN graph model of benchmarks/mgnn.py (reference widths 16, C, C)."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

from benchmarks.mgnn import REF_MGNN, build_reference_mgnn
from graphkit.data.motifs import motif_key, parse_motifs
from graphkit.nn.motif_conv import compute_motifs


def _graph(n: int, seed: int) -> Data:
    gen = torch.Generator().manual_seed(seed)
    src = torch.arange(n)
    dst = (src + 1) % n
    extra = torch.randint(0, n, (2, n), generator=gen)
    ei = torch.cat([torch.stack([src, dst]), extra], 1)
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.unique(torch.cat([ei, ei.flip(0)], 1), dim=1)
    g = Data(x=torch.randn(n, 5, generator=gen), edge_index=ei, y=torch.tensor([seed % 3]))
    names = parse_motifs("all")
    for name, (index, weight) in zip(names, compute_motifs(ei, n, names, pairs="reference"),
                                     strict=True):
        g[motif_key(name, "index")] = index
        g[motif_key(name, "weight")] = weight
    return g


def test_reference_mgnn_widths_and_forward() -> None:
    torch.manual_seed(0)
    model = build_reference_mgnn(5, 3)
    assert [c.out_channels for c in model.convs] == [16, 3, 3]
    assert all(c.pairs == "reference" for c in model.convs)
    assert REF_MGNN["pairs"] == "reference"
    batch = Batch.from_data_list([_graph(7, s) for s in range(4)])
    out = model(batch.x, batch.edge_index, batch.batch, **model.motif_inputs(batch))
    assert out.shape == (4, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
