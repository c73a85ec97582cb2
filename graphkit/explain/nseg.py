"""NSEG: necessary and sufficient explanations of GNN predictions.

Paper: "On the Probability of Necessity and Sufficiency of Explaining Graph Neural Networks: A
Lower Bound Optimization Approach", Ruichu Cai, Yuxuan Zhu, Xuexin Chen, Yuan Fang, Min Wu, Jie
Qiao, Zhifeng Hao; Neural Networks 184 (2025). https://arxiv.org/abs/2212.07056

NSEG maximises a lower bound of the probability of necessity and sufficiency of an explanation,
PNS >= P(y | do(G = G_S)) - P(y | do(G != G_S)), with continuous masks: the sufficiency term is the
probability of the predicted class on the masked graph, the necessity term the same probability on
the (noisily) complemented graph. The objective and its sampling follow the authors' released code
(see ``docs/nseg.md``); masks live on each target's computation subgraph only, and many targets
are optimised at once as one disjoint batch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm import ExplainerAlgorithm
from torch_geometric.explain.algorithm.utils import clear_masks
from torch_geometric.explain.config import MaskType, ModelMode, ModelTaskLevel
from torch_geometric.nn import MessagePassing

from graphkit.data.validate import check_model_inputs
from graphkit.errors import GraphError
from graphkit.explain._batch import (
    BatchExplanation,
    SubgraphBatch,
    build_batch,
    check_output,
    class_log_prob,
    class_prob,
    full_degree_norm,
    predicted_class,
    set_weight_masks,
)

_EPS = 1e-15
OBJECTIVES = ("pns", "pn", "ps")
SCALES = ("log", "prob")


def nearest_counterfactual(x: Tensor, pred: Tensor, cls: int, space: Tensor | None = None
                           ) -> Tensor:
    """Counterfactual features for class ``cls`` by nearest-neighbour matching.

    The rule (the reference code never released this part, so this is ours): for every node i,
    X_cf[i] = x[j] where j is the node nearest to i in Euclidean distance over ``space`` (the
    input features by default, or model embeddings) among the nodes whose predicted class
    ``pred`` differs from ``cls``, excluding i itself; ties go to the lower node id. When no node
    is predicted differently, X_cf = x (the feature part of the explanation becomes inert). On
    graphs with constant features (BA-Shapes, Tree-*) X_cf = x as well: features carry no
    counterfactual information there and only edges can explain.

    Args:
        x: ``[N, F]`` input features.
        pred: ``[N]`` predicted class per node (for graph tasks, the class of the node's graph).
        cls: the explained class.
        space: ``[N, D]`` matching space; defaults to ``x``.
    """
    from sklearn.neighbors import NearestNeighbors
    space = x if space is None else space
    cand = (pred != cls).nonzero().view(-1)
    if cand.numel() == 0:
        return x.clone()
    pts = space.detach().cpu().double().numpy()
    k = min(2, cand.numel())
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(pts[cand.cpu().numpy()])
    _, ind = nn.kneighbors(pts)
    cand_np = cand.cpu().numpy()
    first = cand_np[ind[:, 0]]
    if k > 1:
        second = cand_np[ind[:, 1]]
        first = np.where(first == np.arange(len(first)), second, first)
    return x[torch.from_numpy(first).to(x.device)]


def _entropy(s: Tensor) -> Tensor:
    return -(s * (s + _EPS).log() + (1 - s) * (1 - s + _EPS).log())


def _edge_weights(logits: Tensor, pair: Tensor | None) -> Tensor:
    s = logits.sigmoid()
    return s if pair is None else s[pair]


class NSEG(ExplainerAlgorithm):
    """NSEG explainer (explanation type ``model``; node and graph tasks; object-level masks).

    Use it through :class:`torch_geometric.explain.Explainer` (``edge_mask_type="object"``,
    ``node_mask_type="object"`` adds the feature part), or directly with :meth:`explain`, which
    returns the independent masks of every target.

    Loss per target (minimised with Adam over the mask logits, the model frozen):
    ``-(suff - nec) + alpha * sum(s_e) + beta * mean H(s_e)`` (+ the same with ``alpha_f``,
    ``beta_f`` on the node mask s_f), where ``suff = p_yhat(edges s_e, X_s)``,
    ``X_s = s_f * X + (1 - s_f) * X_cf`` and ``nec`` averages ``p_yhat`` over noisy complements
    (``1 - s + eps``, eps ~ U(-epsilon, epsilon)): ``samples`` edge complements in the edge-only
    mode; in the joint mode ``samples`` each of (edges and features complemented), (edges only)
    and (features only). ``objective="pn"`` minimises ``-(1 - nec)``, ``"ps"`` ``-suff``.

    Args:
        epochs: optimisation steps (reference: 500).
        lr: Adam learning rate (reference: 0.01).
        alpha: weight of the edge-mask size term (sum of the mask).
        beta: weight of the edge-mask mean binary entropy.
        alpha_f: weight of the node-mask size term (joint mode).
        beta_f: weight of the node-mask entropy (joint mode).
        objective: ``"pns"`` (default), ``"pn"`` or ``"ps"`` (ablations).
        scale: ``"log"`` (default: log p(yhat | explanation) + log(1 - p(yhat | complement)),
            same optimum, no vanishing gradient when a probability saturates) or ``"prob"``
            (the reference's suff - nec in probabilities).
        symmetric: one mask value per undirected edge, shared by its two directions (an
            explanation of an undirected graph is a set of undirected edges).
        init: start logit added to the small random initialisation (reference: 0, masks at
            0.5; a positive value starts near the full graph).
        edges: optimise an edge mask (``None``: from the Explainer config, else ``True``).
        features: optimise a node (feature) mask (``None``: from the Explainer config, else
            ``False``).
        epsilon: half-width of the uniform noise on complemented masks (reference: 0.025).
        samples: noise samples per counterfactual case (reference: 2).
        batch_size: targets optimised together in one vectorised run.
        x_cf: ``[N, F]`` counterfactual features to use instead of nearest-neighbour matching.
        cf_space: ``"input"`` or ``"embedding"`` (output of the last message-passing layer) as
            the matching space of :func:`nearest_counterfactual`.
        num_hops: receptive field; defaults to the number of message-passing layers.
        seed: seed of the mask initialisation (per target) and of the noise.
    """

    def __init__(self, epochs: int = 500, lr: float = 0.01, *, alpha: float = 0.005,
                 beta: float = 1.0, alpha_f: float = 0.005, beta_f: float = 1.0,
                 objective: str = "pns", scale: str = "log", symmetric: bool = True,
                 init: float = 0.0, edges: bool | None = None, features: bool | None = None,
                 epsilon: float = 0.025, samples: int = 2, batch_size: int = 128,
                 x_cf: Tensor | None = None, cf_space: str = "input", num_hops: int | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise GraphError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
        if scale not in SCALES:
            raise GraphError(f"scale: expected one of {SCALES}, got {scale!r}")
        if cf_space not in ("input", "embedding"):
            raise GraphError(f"cf_space: expected 'input' or 'embedding', got {cf_space!r}")
        for name, val in (("epochs", epochs), ("samples", samples), ("batch_size", batch_size)):
            if int(val) < 1:
                raise GraphError(f"{name}: expected a positive integer, got {val}")
        if epsilon < 0:
            raise GraphError(f"epsilon: expected >= 0, got {epsilon}")
        self.epochs, self.lr = int(epochs), float(lr)
        self.alpha, self.beta, self.alpha_f, self.beta_f = alpha, beta, alpha_f, beta_f
        self.objective, self.edges, self.features = objective, edges, features
        self.scale, self.symmetric, self.init = scale, bool(symmetric), float(init)
        self.epsilon, self.samples, self.batch_size = float(epsilon), int(samples), int(batch_size)
        self.x_cf, self.cf_space, self.num_hops, self.seed = x_cf, cf_space, num_hops, int(seed)

    # PyG interface ######################################################################

    def supports(self) -> bool:
        cfg, mcfg = self.explainer_config, self.model_config
        if cfg.explanation_type.value != "model":
            return False
        if cfg.edge_mask_type not in (None, MaskType.object):
            return False
        if cfg.node_mask_type not in (None, MaskType.object):
            return False
        if mcfg.mode == ModelMode.regression:
            return False
        return mcfg.task_level in (ModelTaskLevel.node, ModelTaskLevel.graph)

    def forward(self, model: torch.nn.Module, x: Tensor, edge_index: Tensor, *, target: Tensor,
                index: int | Tensor | None = None, **kwargs: Any) -> Explanation:
        res = self.explain(model, x, edge_index, index=index, target=target, **kwargs)
        edge_mask = res.dense_edge_mask(edge_index.size(1)) if self._use_edges() else None
        node_mask = res.dense_node_mask(x.size(0)) if self._use_features() else None
        return Explanation(edge_mask=edge_mask, node_mask=node_mask)

    # Direct interface ###################################################################

    def _use_edges(self) -> bool:
        if self.edges is not None:
            return self.edges
        cfg = getattr(self, "_explainer_config", None)
        return cfg is None or cfg.edge_mask_type is not None

    def _use_features(self) -> bool:
        if self.features is not None:
            return self.features
        cfg = getattr(self, "_explainer_config", None)
        return cfg is not None and cfg.node_mask_type is not None

    def _model_settings(self, task_level: str | None, return_type: str | None
                        ) -> tuple[str, str, bool]:
        mcfg = getattr(self, "_model_config", None)
        if mcfg is not None:
            return (mcfg.task_level.value, mcfg.return_type.value,
                    mcfg.mode == ModelMode.binary_classification)
        return task_level or "node", return_type or "raw", False

    def explain(self, model: torch.nn.Module, x: Tensor, edge_index: Tensor, *,
                index: Any = None, target: Tensor | None = None, task_level: str | None = None,
                return_type: str | None = None, **kwargs: Any) -> BatchExplanation:
        """Explain every target in ``index`` with its own masks.

        Args:
            model: the trained GNN, called as ``model(x, edge_index, **kwargs)``.
            x: ``[N, F]`` node features.
            edge_index: ``[2, E]`` edges.
            index: target node ids (node tasks) or graph ids (graph tasks; pass ``batch=``).
            target: classes to explain, indexed like the model output; defaults to the
                model's prediction.
            task_level: ``"node"`` or ``"graph"`` when not used through an ``Explainer``.
            return_type: ``"raw"``, ``"probs"`` or ``"log_probs"`` likewise.
            **kwargs: further model arguments (``batch`` for graph tasks).

        Returns:
            A :class:`~graphkit.explain.BatchExplanation` with soft masks in [0, 1].
        """
        start = time.perf_counter()
        level, rtype, binary = self._model_settings(task_level, return_type)
        if level not in ("node", "graph"):
            raise GraphError(f"task_level: expected 'node' or 'graph', got {level!r}")
        use_e, use_f = self._use_edges(), self._use_features()
        if not (use_e or use_f):
            raise GraphError("NSEG: nothing to explain (edges=False and features=False)")
        # Entry check (shared with MGNN): bad graphs raise GraphError here, not deep inside the
        # batching or the model. The model is frozen and only the masks are optimised, so x is
        # detached (a caller's x that requires grad would otherwise be backpropagated into
        # once per epoch); sparse features are densified for the subgraph gathers.
        param = next((p for p in model.parameters() if p.is_floating_point()), None)
        check_model_inputs(x, edge_index, batch=kwargs.get("batch") if level == "graph" else None,
                           dtype=None if param is None else param.dtype)
        x = x.detach().to_dense() if x.layout != torch.strided else x.detach()
        was_training = model.training
        model.eval()
        # Frozen weights: only the masks are optimised. Without this every epoch also computed
        # (and accumulated into the caller's .grad) the weight gradients.
        frozen = [p for p in model.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            sub = build_batch(model, x, edge_index, index, task_level=level, hops=self.num_hops,
                              **kwargs)
            with torch.no_grad():
                try:
                    out = model(x, edge_index, **kwargs)
                except (RuntimeError, IndexError) as exc:  # e.g. x narrower than in_channels
                    raise GraphError(f"model: the forward pass on this graph failed "
                                     f"({type(exc).__name__}: {exc}); check that x "
                                     f"{list(x.shape)} matches the model's input width") from exc
            check_output(out, rtype)
            pred = predicted_class(out, rtype, binary)
            tgt = pred if target is None else torch.as_tensor(target, device=out.device)
            tgt = tgt.view(-1)[sub.index.to(out.device)].long()
            x_cf = self._counterfactual(model, x, edge_index, sub, pred, tgt, kwargs) \
                if use_f else None
            edge_masks, node_masks = [], []
            for lo in range(0, sub.num_instances, self.batch_size):
                hi = min(lo + self.batch_size, sub.num_instances)
                chunk = sub.slice(lo, hi)
                cf = None if x_cf is None else x_cf[(sub.node_seg >= lo) & (sub.node_seg < hi)]
                em, nm = self._optimise(model, chunk, tgt[lo:hi], cf, rtype, binary, use_e,
                                        use_f)
                edge_masks.append(em)
                node_masks.append(nm)
        finally:
            clear_masks(model)
            model.train(was_training)
            for p in frozen:
                p.requires_grad_(True)
        edge_mask = torch.cat(edge_masks)
        node_mask = torch.cat(node_masks) if use_f else None
        return BatchExplanation(sub=sub, target=tgt, edge_mask=edge_mask, node_mask=node_mask,
                                x_cf=x_cf, seconds=time.perf_counter() - start,
                                method="nseg-joint" if use_f else "nseg")

    def instance_loss(self, model: torch.nn.Module, res: BatchExplanation,
                      edge_mask: Tensor | None = None, node_mask: Tensor | None = None, *,
                      return_type: str | None = None) -> Tensor:
        """NSEG's objective for every instance of ``res``, at its masks or at ``edge_mask`` /
        ``node_mask`` given in the same layout (one value in [0, 1] per batch edge / node),
        noise-free (one complement per counterfactual case, no jitter).

        A diagnostic: scoring a ground-truth motif this way tells whether an explanation that
        misses the motif is the optimiser's fault (the motif scores lower) or the objective's
        (the found masks score lower, e.g. because a smaller subgraph is just as sufficient).
        """
        _, rtype, binary = self._model_settings(None, return_type)
        sub = res.sub
        s_e = res.edge_mask if edge_mask is None else edge_mask.to(res.edge_mask)
        s_f = res.node_mask if node_mask is None else node_mask.to(sub.x)
        if s_e.shape != res.edge_mask.shape:
            raise GraphError(f"edge_mask: expected {res.edge_mask.numel()} values (one per "
                             f"batch edge), got shape {list(s_e.shape)}")
        if s_f is not None and s_f.shape != (sub.x.size(0),):
            raise GraphError(f"node_mask: expected {sub.x.size(0)} values (one per batch "
                             f"node), got shape {list(s_f.shape)}")
        n = sub.num_instances
        e_count = torch.bincount(sub.edge_seg, minlength=n).clamp(min=1).float()
        n_count = torch.bincount(sub.node_seg, minlength=n).clamp(min=1).float()
        use_e = self._use_edges()
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), full_degree_norm(model, sub, 4 if s_f is not None and use_e
                                                   else 2):
                return self._objective(model, sub, res.target, res.x_cf, s_e, s_f, rtype,
                                       binary, use_e, e_count, n_count,
                                       lambda shape: torch.zeros(shape, device=sub.x.device),
                                       1)
        finally:
            clear_masks(model)
            model.train(was_training)

    # Internals ##########################################################################

    def _counterfactual(self, model: torch.nn.Module, x: Tensor, edge_index: Tensor,
                        sub: SubgraphBatch, pred: Tensor, tgt: Tensor,
                        kwargs: dict[str, Any]) -> Tensor:
        if self.x_cf is not None:
            if tuple(self.x_cf.shape) != tuple(x.shape):
                raise GraphError(f"x_cf: expected shape {list(x.shape)}, got "
                                 f"{list(self.x_cf.shape)}")
            return self.x_cf.to(x.device)[sub.node_ids]
        node_pred = pred if sub.task_level == "node" else pred[kwargs["batch"].long()]
        space = self._embedding(model, x, edge_index, kwargs) if self.cf_space == "embedding" \
            else None
        out = torch.empty_like(sub.x)
        inst_cls = tgt[sub.node_seg]
        for cls in tgt.unique().tolist():
            table = nearest_counterfactual(x, node_pred, int(cls), space)
            sel = inst_cls == cls
            out[sel] = table[sub.node_ids[sel]]
        return out

    @staticmethod
    def _embedding(model: torch.nn.Module, x: Tensor, edge_index: Tensor,
                   kwargs: dict[str, Any]) -> Tensor:
        layers = [m for m in model.modules() if isinstance(m, MessagePassing)]
        if not layers:
            raise GraphError("cf_space='embedding': the model has no message-passing layer")
        captured: list[Tensor] = []
        handle = layers[-1].register_forward_hook(lambda m, i, o: captured.append(o))
        try:
            with torch.no_grad():
                model(x, edge_index, **kwargs)
        finally:
            handle.remove()
        emb = captured[-1]
        return emb[0] if isinstance(emb, tuple) else emb

    def _init_logits(self, seg: Tensor, index: Tensor, device: torch.device) -> Tensor:
        """``init`` + Uniform(-1/sqrt(n), 1/sqrt(n)) per target (n = its mask size), seeded by
        the target id so a target gets the same start whatever batch it is in."""
        counts = torch.bincount(seg, minlength=index.numel()).tolist()
        parts = []
        for t, n in zip(index.tolist(), counts, strict=True):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(t))
            parts.append((torch.rand(n, generator=gen) * 2 - 1) / max(n, 1) ** 0.5 + self.init)
        return torch.cat(parts).to(device)

    def _optimise(self, model: torch.nn.Module, sub: SubgraphBatch, tgt: Tensor,
                  x_cf: Tensor | None, rtype: str, binary: bool, use_e: bool,
                  use_f: bool) -> tuple[Tensor, Tensor | None]:
        dev = sub.x.device
        n_inst = sub.num_instances
        params = []
        m_e = m_f = None
        e_count = torch.bincount(sub.edge_seg, minlength=n_inst).clamp(min=1).float()
        n_count = torch.bincount(sub.node_seg, minlength=n_inst).clamp(min=1).float()
        pair = sub.undirected_pairs() if self.symmetric else None
        if use_e:
            seg = sub.edge_seg if pair is None else torch.zeros(
                int(pair.max()) + 1 if pair.numel() else 0, dtype=torch.long,
                device=dev).scatter_(0, pair, sub.edge_seg)
            m_e = torch.nn.Parameter(self._init_logits(seg, sub.index, dev))
            params.append(m_e)
        if use_f:
            m_f = torch.nn.Parameter(self._init_logits(sub.node_seg, sub.index + 7919, dev))
            params.append(m_f)
        opt = torch.optim.Adam(params, lr=self.lr)
        gen = torch.Generator(device=dev).manual_seed(self.seed)

        def noise(shape: tuple[int, ...]) -> Tensor:
            if self.epsilon == 0:
                return torch.zeros(shape, device=dev)
            return (torch.rand(shape, generator=gen, device=dev) * 2 - 1) * self.epsilon

        def masks() -> tuple[Tensor, Tensor | None]:
            ones = torch.ones(sub.edge_index.size(1), device=dev)
            s_e = _edge_weights(m_e, pair) if m_e is not None else ones
            return s_e, None if m_f is None else m_f.sigmoid()

        # The stacked edges are the same in every epoch, so GCN layers use one cached
        # normalisation (full-graph degrees) for the whole run; masks act after it.
        copies = 1 + self.samples * (3 if m_f is not None and use_e else 1)
        try:
            with full_degree_norm(model, sub, copies):
                for _ in range(self.epochs):
                    opt.zero_grad()
                    s_e, s_f = masks()
                    loss = self._objective(model, sub, tgt, x_cf, s_e, s_f, rtype, binary,
                                           use_e, e_count, n_count, noise, self.samples).sum()
                    loss.backward()
                    opt.step()
        finally:
            clear_masks(model)
        s_e, s_f = masks()
        return s_e.detach(), None if s_f is None else s_f.detach()

    def _prediction_loss(self, out: Tensor, tgt: Tensor, rtype: str, binary: bool) -> Tensor:
        """Per-instance prediction loss; row 0 of ``out`` is the sufficiency copy, the other
        rows the necessity samples."""
        if self.scale == "prob":
            p = class_prob(out, tgt, rtype, binary)
            suff, nec = p[0], p[1:].mean(0)
            if self.objective == "pns":
                return -(suff - nec)
            if self.objective == "pn":
                return -(1 - nec)
            return -suff
        # log scale: log p(yhat | explanation) + log(1 - p(yhat | complement)); same optimum
        # (suff = 1, nec = 0) but no vanishing gradient when a probability saturates.
        logp, log1mp = class_log_prob(out, tgt, rtype, binary)
        suff, nec = logp[0], log1mp[1:].mean(0)
        if self.objective == "pns":
            return -(suff + nec)
        if self.objective == "pn":
            return -nec
        return -suff

    def _objective(self, model: torch.nn.Module, sub: SubgraphBatch, tgt: Tensor,
                   x_cf: Tensor | None, s_e: Tensor, s_f: Tensor | None, rtype: str,
                   binary: bool, use_e: bool, e_count: Tensor, n_count: Tensor, noise: Any,
                   samples: int) -> Tensor:
        """NSEG's loss of every instance at edge weights ``s_e`` and node mask ``s_f``, with
        ``samples`` noisy complements per counterfactual case."""
        x = sub.x
        num_e = sub.edge_index.size(1)
        ones = torch.ones(num_e, device=x.device)
        copies: list[tuple[Tensor, Tensor]] = []
        if s_f is not None:
            assert x_cf is not None
            s_fx = s_f.unsqueeze(-1)
            x_s = s_fx * x + (1 - s_fx) * x_cf

            def x_n() -> Tensor:
                eps = noise((x.size(0), 1))
                return (s_fx - eps) * x_cf + (1 - s_fx + eps) * x
            copies.append((s_e, x_s))
            if use_e:
                copies += [(1 - s_e + noise((num_e,)), x_n()) for _ in range(samples)]
                copies += [(1 - s_e + noise((num_e,)), x_s) for _ in range(samples)]
                copies += [(s_e, x_n()) for _ in range(samples)]
            else:
                copies += [(ones, x_n()) for _ in range(samples)]
        else:
            copies.append((s_e, x))
            copies += [(1 - s_e + noise((num_e,)), x) for _ in range(samples)]
        x_all, ei_all, w_all, kw, rows = sub.replicate([c[1] for c in copies],
                                                       [c[0] for c in copies])
        set_weight_masks(model, w_all, ei_all)
        out = model(x_all, ei_all, **kw)
        loss = self._prediction_loss(out[rows], tgt, rtype, binary)
        n_inst = sub.num_instances
        if use_e:
            penalty = self.alpha * s_e + self.beta * _entropy(s_e) / e_count[sub.edge_seg]
            loss = loss + torch.zeros(n_inst, device=x.device).index_add(0, sub.edge_seg,
                                                                         penalty)
        if s_f is not None:
            penalty = self.alpha_f * s_f + self.beta_f * _entropy(s_f) / n_count[sub.node_seg]
            loss = loss + torch.zeros(n_inst, device=x.device).index_add(0, sub.node_seg,
                                                                         penalty)
        return loss
