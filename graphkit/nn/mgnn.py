"""MGNN: the Motif Graph Neural Network for node and graph classification.

Xuexin Chen, Ruichu Cai, Yuan Fang, Min Wu, Zijian Li, Zhifeng Hao, "Motif Graph Neural Network",
IEEE TNNLS 2023, https://arxiv.org/abs/2112.14900. Architectures as in the reference code:

- node task: input dropout -> ``num_layers`` x (MotifConv -> ReLU -> dropout) -> Linear;
- graph task: ``num_layers`` x (dropout -> MotifConv -> MLP(Linear, BN, ReLU, Linear, ReLU)) ->
  sum pooling -> Linear -> ReLU -> dropout -> Linear (the reference narrows conv 2 and 3 to the
  class count: ``hidden_channels=(16, C, C)``; an int gives every conv the same width).

Call it like any PyG model: ``model(x, edge_index)`` or ``model(x, edge_index, batch)``; the motif
matrices are computed from ``edge_index`` and cached, or taken from ``motif_adj=`` (see
:meth:`MGNN.motif_inputs`). The output is raw logits; :meth:`MGNN.loss` is cross-entropy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool

from graphkit.data.motifs import motifs_from_data, parse_motifs
from graphkit.data.validate import check_model_inputs
from graphkit.errors import GraphError
from graphkit.nn.motif_conv import (
    MotifCache,
    MotifConv,
    MotifInput,
    MotifOperator,
    SparseOperator,
)


class SparseInput:
    """Input features kept as a :class:`SparseOperator` when they are mostly zero.

    Bag-of-words features (1% non-zero on Cora) make the dense ``X W`` product and its weight
    gradient the largest cost of an epoch; with the sparsity pattern cached per feature tensor,
    both become sparse products, and input dropout only draws for the non-zero entries (dropping
    a zero changes nothing, so the distribution is that of ``F.dropout``).
    """

    def __init__(self) -> None:
        self._x: Tensor | None = None
        self._version = -1
        self._op: SparseOperator | None = None
        self._values: Tensor | None = None

    def __call__(self, x: Tensor, p: float, training: bool) -> Tensor | SparseOperator:
        if x.requires_grad or x.is_sparse or x.numel() == 0:
            return F.dropout(x, p, training) if p > 0 else x  # gradients w.r.t. x stay exact
        # Identity plus version counter: a held reference means the memory cannot be reused by
        # another tensor, and any in-place edit of x bumps its version.
        if x is not self._x or x._version != self._version:
            index = x.nonzero().t()
            self._x, self._version = x, x._version
            if index.size(1) > x.numel() // 4:
                self._op = None
            else:
                self._values = x[index[0], index[1]]
                self._op = SparseOperator(index, self._values, tuple(x.shape))
        if self._op is None:
            return F.dropout(x, p, training) if p > 0 else x
        if not training or p <= 0:
            return self._op
        keep = torch.rand(self._values.numel(), device=x.device) >= p
        return self._op.with_values(self._values * keep.to(x.dtype) / (1 - p))

    def __deepcopy__(self, memo: dict) -> SparseInput:
        return SparseInput()  # CSR tensors cannot be deep-copied; rebuilt on first use

    def clear(self) -> None:
        self._x = self._op = self._values = None
        self._version = -1


class _CheckedInputs:
    """The last inputs that passed :meth:`MGNN._check_inputs`: the same tensor objects at the
    same version (no in-place edit since), with the same model dtype and mode, need no recheck."""

    def __init__(self) -> None:
        self._key: tuple | None = None

    @staticmethod
    def _make(*items: Any) -> tuple | None:
        try:
            return tuple((t, t._version) if isinstance(t, Tensor) else (t, None) for t in items)
        except RuntimeError:  # inference-mode tensors have no version counter: always recheck
            return None

    def same(self, *items: Any) -> bool:
        key = self._make(*items)
        if self._key is None or key is None:
            return False
        return all(a[0] is b[0] and a[1] == b[1]
                   for a, b in zip(key, self._key, strict=True))

    def remember(self, *items: Any) -> None:
        self._key = self._make(*items)

    def __deepcopy__(self, memo: dict) -> _CheckedInputs:
        return _CheckedInputs()  # a copy rechecks once instead of holding the caller's tensors


class MGNN(nn.Module):
    """Motif Graph Neural Network.

    Args:
        in_channels: node feature width.
        hidden_channels: MotifConv width ``d_out`` (reference: 16): one int for every conv, or
            a sequence with one positive int per conv, e.g. ``(16, C, C)`` for the reference
            graph model whose convs 2 and 3 have the class count ``C`` as width. Only ``d_out``
            changes; each conv's output is ``13 * d'`` wide (``compress_channels``) either way.
        out_channels: number of classes.
        num_layers: MotifConv layers (reference: 1 on Cora/CiteSeer, 2 on PubMed, 3 for graphs);
            default the reference's 1 for ``task="node"`` and 3 for ``task="graph"``, or the
            length of a ``hidden_channels`` sequence (which must match it).
        task: ``"node"`` or ``"graph"``.
        motifs: motif selection, default all 13.
        dropout: dropout after each conv (node) / before each conv and the last Linear (graph).
        input_dropout: dropout on the input features (node task).
        compress_channels: ``d'`` per motif (reference: 6).
        mlp_channels: MLP width of the graph task (reference: 64).
        pairs, negative, att_act, motif_dropout, att_dropout: see :class:`MotifConv`.
        cache_size: graphs whose motif matrices are cached.
    """

    def __init__(self, in_channels: int, hidden_channels: int | Sequence[int] = 16,
                 out_channels: int = 2, num_layers: int | None = None, task: str = "node",
                 motifs: str | Iterable[str | int] = "all", dropout: float = 0.5,
                 input_dropout: float = 0.5, compress_channels: int = 6, mlp_channels: int = 64,
                 *, pairs: str = "all", negative: bool = True, att_act: str = "sigmoid",
                 motif_dropout: float = 0.1, att_dropout: float = 0.1, cache_size: int = 4):
        super().__init__()
        if task not in ("node", "graph"):
            raise GraphError(f"task: expected 'node' or 'graph', got {task!r}")
        widths = self._widths(hidden_channels, num_layers, 3 if task == "graph" else 1)
        num_layers = len(widths)
        if not isinstance(out_channels, int) or out_channels < 1:
            raise GraphError(f"out_channels: expected a positive int, got {out_channels!r}")
        self.in_channels, self.out_channels, self.task = in_channels, out_channels, task
        self.hidden_channels = widths
        self.motifs = parse_motifs(motifs)
        self.pairs, self.negative = pairs, negative
        self.dropout, self.input_dropout = dropout, input_dropout
        conv_kw: dict[str, Any] = dict(compress_channels=compress_channels, motifs=self.motifs,
                                       pairs=pairs, negative=negative, att_act=att_act,
                                       motif_dropout=motif_dropout, att_dropout=att_dropout,
                                       cache_size=0)
        self.convs = nn.ModuleList()
        self.mlps = nn.ModuleList()
        width = in_channels
        for hidden in widths:
            conv = MotifConv(width, hidden, **conv_kw)
            self.convs.append(conv)
            width = conv.out_features
            if task == "graph":
                self.mlps.append(nn.Sequential(
                    nn.Linear(width, mlp_channels), nn.BatchNorm1d(mlp_channels), nn.ReLU(),
                    nn.Linear(mlp_channels, mlp_channels), nn.ReLU()))
                width = mlp_channels
        if task == "graph":
            self.head = nn.Sequential(nn.Linear(width, mlp_channels), nn.ReLU(),
                                      nn.Dropout(dropout), nn.Linear(mlp_channels, out_channels))
        else:
            self.head = nn.Sequential(nn.Linear(width, out_channels))
        # Reach of a node output, for explainers that cut computation subgraphs
        # (graphkit.explain._batch): each MotifConv passes one hop through Â and two through
        # the motif matrices, and its motif degrees look one hop beyond that.
        self.num_hops, self.context_hops = 3 * num_layers, 1
        self.cache = MotifCache(cache_size)
        self.sparse_input = SparseInput()
        self._checked_inputs = _CheckedInputs()
        self.reset_parameters()

    @staticmethod
    def _widths(hidden_channels: Any, num_layers: Any, default_layers: int) -> tuple[int, ...]:
        """The conv widths, one per layer, from an int or a sequence of ints."""
        if num_layers is not None and (isinstance(num_layers, bool)
                                       or not isinstance(num_layers, int) or num_layers < 1):
            raise GraphError(f"num_layers: expected a positive int, got {num_layers!r}")
        if isinstance(hidden_channels, Sequence) and not isinstance(hidden_channels, str):
            widths = tuple(hidden_channels)
            if not widths:
                raise GraphError("hidden_channels: expected a positive int or a non-empty "
                                 "sequence of positive ints, got an empty sequence")
            if num_layers is not None and len(widths) != num_layers:
                raise GraphError(f"hidden_channels: {len(widths)} widths {list(widths)} for "
                                 f"num_layers={num_layers}; give one width per conv")
        else:
            widths = (hidden_channels,) * (num_layers or default_layers)
        for w in widths:
            if isinstance(w, bool) or not isinstance(w, int) or w < 1:
                raise GraphError(f"hidden_channels: expected positive ints, got "
                                 f"{hidden_channels!r}")
        return widths

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.cache.clear()
        self.sparse_input.clear()

    def motif_inputs(self, data: Any) -> dict[str, Any]:
        """Keyword arguments for :meth:`forward` from a ``Data``/``Batch``: ``motif_adj`` when
        :class:`~graphkit.data.AddMotifAdjacency` stored this model's motifs on it."""
        stored = motifs_from_data(data, self.motifs)
        return {} if stored is None else {"motif_adj": stored}

    def _check_inputs(self, x: Any, edge_index: Any, batch: Any, edge_weight: Any) -> None:
        """Refuse bad input with a :class:`GraphError` before any state changes (a NaN batch in
        training mode would otherwise poison the BatchNorm running statistics). The full check
        is O(N F + E), so it is skipped when the same unmodified tensors come again (every epoch
        of a full-batch fit)."""
        dtype = next(self.parameters()).dtype
        if self._checked_inputs.same(x, edge_index, batch, edge_weight, dtype, self.training):
            return
        check_model_inputs(x, edge_index, batch=batch, edge_weight=edge_weight,
                           in_channels=self.in_channels, dtype=dtype)
        if self.training and self.task == "graph" and x.size(0) < 2:
            raise GraphError("x: a graph-task MGNN in training mode needs at least 2 nodes "
                             "(BatchNorm statistics over nodes); call model.eval() to predict")
        self._checked_inputs.remember(x, edge_index, batch, edge_weight, dtype, self.training)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None, *,
                edge_weight: Tensor | None = None, motif_adj: MotifInput | None = None,
                **_: Any) -> Tensor:
        """Args:
            x: ``[N, in_channels]`` node features.
            edge_index: ``[2, E]`` edges.
            batch: graph id per node (graph task; None means one graph).
            edge_weight: optional ``[E]`` weights; motif matrices then follow them
                (differentiably), which is how an explainer's soft mask reaches motif messages.
            motif_adj: precomputed normalized motif matrices (see :meth:`motif_inputs`).

        Returns:
            ``[N, out_channels]`` logits (node task) or ``[num_graphs, out_channels]``.
        """
        self._check_inputs(x, edge_index, batch, edge_weight)
        if x.layout != torch.strided:
            x = x.to_dense()  # dropout and the input product need strided features
        if motif_adj is None and edge_weight is None:
            motif_adj = self.cache.get(edge_index, x.size(0), self.motifs, self.pairs,
                                       self.negative)
        elif motif_adj is not None and not isinstance(motif_adj, MotifOperator) \
                and len(motif_adj) == len(self.motifs) \
                and not any(w.requires_grad for _, w in motif_adj):
            motif_adj = MotifOperator(motif_adj, x.size(0))  # built once for all layers
        if self.task == "node":
            h = self.sparse_input(x, self.input_dropout, self.training)
            for conv in self.convs:
                h = conv(h, edge_index, motif_adj, edge_weight)
                h = F.dropout(F.relu(h), self.dropout, self.training)
            return self.head(h)
        h = x
        for conv, mlp in zip(self.convs, self.mlps, strict=True):
            h = F.dropout(h, self.dropout, self.training)
            h = mlp(conv(h, edge_index, motif_adj, edge_weight))
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        return self.head(global_add_pool(h, batch))

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        """Plain cross-entropy on logits, as the reference (``nll_loss`` on ``log_softmax``)."""
        return F.cross_entropy(out, y)
