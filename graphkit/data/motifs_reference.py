"""Motif matrices exactly as the MGNN reference code builds them (its open-motif quirks included).

Xuexin Chen et al., "Motif Graph Neural Network", IEEE TNNLS 2023, arXiv 2112.14900; official code
``github:CXX1113/MGNN`` (``MotifCounter.split_13motif_adjs``), summarised in
``/work/shared/papers/mgnn.md`` section 2.1. No code was copied; the per-centre loop of the
reference is rewritten as per-edge arithmetic.

Why a second definition exists: :func:`graphkit.data.motifs.motif_adjacency` counts motif
instances (Benson's definition, optionally restricted to edge pairs). The reference code's open
motifs M8-M13 are not instance counts: for every centre node ``c`` it adds, into column ``c``, a
per-centre count to each member of a neighbour set, where the *out*-neighbourhood contains ``c``
itself (``A + I``), and then symmetrises (``W + W^T``). Consequences, all reproduced here:

- M8, M9 and M11 get a diagonal (``2 d_out``, ``2 d_in``, ``2 d_bi`` on an undirected graph: 2d);
- the centre-leaf weights are off by one from the instance counts (M8 gives ``d_i + d_j`` on an
  undirected edge instead of ``d_i + d_j - 2``); M9 gives ``2 (d_i + d_j) + 2``;
- leaf-leaf pairs (two hops apart) get no weight.

On an undirected graph the 13 normalized matrices then collapse to 4 distinct ones
(``{M1..M7}``, ``{M8, M11}``, ``{M9}``, ``{M10, M12, M13}``) instead of the 2 of the instance
counts. Closed motifs M1-M7 are the same in both definitions and come from
:func:`~graphkit.data.motifs.motif_adjacency`.

Per centre ``c`` (``out = N_out(c) + {c}``, ``in = N_in(c)``, ``bi`` = reciprocated neighbours,
``pure_out = out - bi``, ``pure_in = in - bi``), the weight added to ``W[r, c]`` for ``r`` in:

- M8: ``out`` gets ``|out| - 1``;
- M9: ``bi`` gets ``|out| + |in|``, ``pure_out`` gets ``|in|``, ``pure_in`` gets ``|out|``;
- M10: ``in`` gets ``|in| - 1``;
- M11: ``bi`` gets ``|out| - 1``, ``pure_out`` gets ``|bi|``;
- M12: ``bi`` gets ``|in| - 1``, ``pure_in`` gets ``|bi|``;
- M13: ``bi`` gets ``|bi| - 1``.

With edge weights, membership weighs ``A[c, r]`` (out), ``A[r, c]`` (in), ``B[c, r] = A[c, r]
A[r, c]`` (bi) and their differences (pure sets), and set sizes become weighted degrees, so the
result is differentiable in the weights (explainer masks); with unit weights it is the reference.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor
from torch_geometric.utils import coalesce

from graphkit.data.motifs import OPEN, MotifAdjacency, motif_adjacency, parse_motifs
from graphkit.data.validate import check_edge_index, check_edge_weight
from graphkit.errors import GraphError


def _prepared(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None
              ) -> tuple[Tensor, Tensor, Tensor]:
    """Coalesced edges without self-loops (duplicates merged by maximum, as motif_adjacency)."""
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 0:
        raise GraphError(f"num_nodes: expected a non-negative int, got {num_nodes!r}")
    check_edge_index(edge_index, num_nodes)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    else:
        check_edge_weight(edge_weight, edge_index.size(1))
    keep = edge_index[0] != edge_index[1]
    index, weight = coalesce(edge_index[:, keep], edge_weight[keep], num_nodes, reduce="max")
    return index[0], index[1], weight


def reference_open_motifs(edge_index: Tensor, num_nodes: int,
                          motifs: Iterable[str] = OPEN, *, edge_weight: Tensor | None = None,
                          dtype: torch.dtype = torch.float32) -> dict[str, tuple[Tensor, Tensor]]:
    """The reference code's open-motif matrices (see the module docstring), symmetric, with the
    self-loop diagonal, as ``{name: (edge_index, weight)}`` with exact zeros dropped."""
    wanted = [m for m in parse_motifs(list(motifs)) if m in OPEN]
    src, dst, w = _prepared(edge_index, num_nodes, edge_weight)
    n = num_nodes
    if w.requires_grad:
        w = w.double() if w.device.type == "cpu" else w
    else:
        w = w.to(torch.float64)
    key = src * n + dst
    rev = dst * n + src
    pos = torch.searchsorted(key, rev).clamp_max(max(key.numel() - 1, 0))
    has_rev = key.numel() > 0
    w_rev = torch.where(key[pos] == rev, w[pos], torch.zeros_like(w)) if has_rev else w
    b = w * w_rev                                          # B[c, r] for the edge (c -> r)
    d_out = w.new_zeros(n).index_add(0, src, w)
    d_in = w.new_zeros(n).index_add(0, dst, w)
    d_bi = w.new_zeros(n).index_add(0, src, b)
    size_out = d_out + 1                                   # the centre is its own out-neighbour
    nodes = torch.arange(n, device=src.device)

    def centre_row(member: Tensor, count: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return dst, src, member * count[src]      # edge (c -> r): centre c = src, member r = dst

    def centre_col(member: Tensor, count: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return src, dst, member * count[dst]      # edge (r -> c): centre c = dst, member r = src

    def centre_self(count: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return nodes, nodes, count                # the centre as its own out-neighbour

    out: dict[str, tuple[Tensor, Tensor]] = {}
    for name in wanted:
        if name == "M8":
            terms = [centre_row(w, size_out - 1), centre_self(size_out - 1)]
        elif name == "M9":
            terms = [centre_row(b, size_out + d_in), centre_row(w - b, d_in), centre_self(d_in),
                     centre_col(w - b, size_out)]
        elif name == "M10":
            terms = [centre_col(w, d_in - 1)]
        elif name == "M11":
            terms = [centre_row(b, size_out - 1), centre_row(w - b, d_bi), centre_self(d_bi)]
        elif name == "M12":
            terms = [centre_row(b, d_in - 1), centre_col(w - b, d_bi)]
        else:  # M13
            terms = [centre_row(b, d_bi - 1)]
        rows, cols, vals = zip(*terms, strict=True)
        row, col, val = torch.cat(rows), torch.cat(cols), torch.cat(vals)
        # W + W^T, then sum duplicates.
        index, value = coalesce(torch.stack([torch.cat([row, col]), torch.cat([col, row])]),
                                torch.cat([val, val]), n, reduce="sum")
        keep = value != 0
        out[name] = (index[:, keep], value[keep].to(dtype))
    return out


def reference_motif_adjacency(edge_index: Tensor, num_nodes: int,
                              motifs: str | int | Iterable[str | int] = "all", *,
                              edge_weight: Tensor | None = None) -> MotifAdjacency:
    """All requested motif matrices as the MGNN reference code defines them: closed motifs from
    :func:`~graphkit.data.motifs.motif_adjacency`, open motifs from
    :func:`reference_open_motifs`. Same return type and conventions as ``motif_adjacency``
    except that M8, M9 and M11 have a diagonal."""
    wanted = parse_motifs(motifs)
    closed = [m for m in wanted if m not in OPEN]
    dtype = edge_weight.dtype if isinstance(edge_weight, Tensor) \
        and edge_weight.is_floating_point() else torch.float32
    matrices: dict[str, tuple[Tensor, Tensor]] = {}
    if closed:
        matrices.update(motif_adjacency(edge_index, num_nodes, closed, edge_weight=edge_weight,
                                        pairs="edges").matrices)
    if len(closed) < len(wanted):
        matrices.update(reference_open_motifs(edge_index, int(num_nodes), wanted,
                                              edge_weight=edge_weight, dtype=dtype))
    ordered = {name: matrices[name] for name in wanted}
    return MotifAdjacency(int(num_nodes), ordered, {name: (name,) for name in ordered})
