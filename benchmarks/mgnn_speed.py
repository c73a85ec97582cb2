"""MGNN speed: motif-adjacency construction (1M edges; vs a per-triple enumeration on 50k edges)
and MGNN's training-epoch time relative to PyG GCN on Cora at the same hidden width.

    GRAPHKIT_DATA=/work/shared/datasets OMP_NUM_THREADS=2 python -m benchmarks.mgnn_speed

Records go to ``benchmarks/results/mgnn_speed.jsonl`` (protocol names the part).
"""

from __future__ import annotations

import argparse
import itertools
import time

import networkx as nx
import torch

from benchmarks.harness import RESULTS, append_record, make_record, time_fn
from graphkit.data.motifs import MOTIFS, motif_adjacency

OUT = RESULTS / "mgnn_speed.jsonl"


def random_digraph(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes, (2, int(num_edges * 1.05)), generator=gen)
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.unique(ei, dim=1)
    return ei[:, torch.randperm(ei.size(1), generator=gen)[:num_edges]]


def pattern_table(pairs: str) -> dict[int, list[tuple[int, int, int, float]]]:
    """For each 6-bit edge pattern on an ordered triple: (motif, i, j, count) contributions."""
    slots = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]
    table = {}
    for bits in range(64):
        edges = [slots[b] for b in range(6) if bits >> b & 1]
        ei = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
        res = motif_adjacency(ei, 3, pairs=pairs)
        table[bits] = [(k, int(i), int(j), float(w)) for k, m in enumerate(MOTIFS)
                       for (i, j), w in zip(res[m][0].t().tolist(), res[m][1].tolist(),
                                            strict=True)]
    return table


def naive_motifs(edge_index: torch.Tensor, num_nodes: int, pairs: str) -> list[dict]:
    """The straightforward way: walk every connected node triple with networkx, read its edge
    pattern and add its motif counts (a Python loop over triples)."""
    table = pattern_table(pairs)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(num_nodes))
    graph.add_edges_from(edge_index.t().tolist())
    und = graph.to_undirected(as_view=True)
    out: list[dict] = [{} for _ in MOTIFS]
    slots = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]
    seen = set()
    for c in range(num_nodes):
        for a, b in itertools.combinations(sorted(und[c]), 2):
            tri = tuple(sorted((a, b, c)))
            if tri in seen:
                continue
            seen.add(tri)
            bits = sum(1 << s for s, (u, v) in enumerate(slots)
                       if graph.has_edge(tri[u], tri[v]))
            for k, i, j, w in table[bits]:
                key = (tri[i], tri[j])
                out[k][key] = out[k].get(key, 0.0) + w
    return out


def motif_speed(args: argparse.Namespace) -> None:
    ei = random_digraph(args.naive_nodes, args.naive_edges, 0)
    for pairs in ("all", "edges"):
        fast = time_fn(lambda p=pairs: motif_adjacency(ei, args.naive_nodes, pairs=p), warmup=1,
                       repeats=3)
        start = time.perf_counter()
        naive = naive_motifs(ei, args.naive_nodes, pairs)
        slow = time.perf_counter() - start
        res = motif_adjacency(ei, args.naive_nodes, pairs=pairs)
        agree = all(len(naive[k]) == res[m][0].size(1) for k, m in enumerate(MOTIFS))
        print(f"{args.naive_edges} edges, pairs={pairs}: sparse {fast:.3f} s, naive {slow:.1f} s,"
              f" speedup {slow / fast:.1f}x, same nnz {agree}", flush=True)
        append_record(OUT, make_record(
            "motif_adjacency", f"random-digraph-{args.naive_edges}",
            f"motif-speed-vs-naive-{pairs}",
            0, {"seconds_sparse": fast, "seconds_naive": slow, "speedup": slow / fast,
                "nnz_agree": agree}, fast, "cpu", num_nodes=args.naive_nodes,
            num_threads=torch.get_num_threads()))
    ei = random_digraph(args.big_nodes, args.big_edges, 1)
    for pairs in ("edges", "all"):
        start = time.perf_counter()
        res = motif_adjacency(ei, args.big_nodes, pairs=pairs)
        seconds = time.perf_counter() - start
        nnz = sum(m[0].size(1) for m in res.matrices.values())
        print(f"{args.big_edges} edges, pairs={pairs}: all 13 motifs in {seconds:.1f} s "
              f"(nnz {nnz})", flush=True)
        append_record(OUT, make_record(
            "motif_adjacency", f"random-digraph-{args.big_edges}", f"motif-speed-1M-{pairs}", 0,
            {"seconds": seconds, "nnz": nnz}, seconds, "cpu", num_nodes=args.big_nodes,
            num_threads=torch.get_num_threads()))
        del res


def epoch_ratio(args: argparse.Namespace) -> None:
    from torch_geometric.nn.models import GCN

    from graphkit.data import load, random_split
    from graphkit.nn import MGNN
    from graphkit.runtime import resolve_device
    dev = resolve_device(args.device)
    data = random_split(load("cora"), seed=0).to(dev)

    def step(model):
        model = model.to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)

        def run():
            model.train()
            opt.zero_grad()
            out = model(data.x, data.edge_index)
            torch.nn.functional.cross_entropy(out[data.train_mask],
                                              data.y[data.train_mask]).backward()
            opt.step()
        return run

    for label, kw in (("reference-dropout", dict(input_dropout=0.5, dropout=0.6)),
                      ("no-input-dropout", dict(input_dropout=0.0, dropout=0.6))):
        for pairs, hidden in itertools.product(args.pairs, args.hidden):
            torch.manual_seed(0)
            d = args.compress_channels
            mgnn = MGNN(data.num_features, hidden, 7, 1, pairs=pairs, compress_channels=d, **kw)
            gcn = GCN(data.num_features, hidden, 2, 7, dropout=0.5)
            t_m = time_fn(step(mgnn), warmup=3, repeats=args.repeats, device=dev)
            t_g = time_fn(step(gcn), warmup=3, repeats=args.repeats, device=dev)
            print(f"Cora epoch ({label}, pairs={pairs}, width {hidden}, d' {d}, {dev}): MGNN "
                  f"{t_m * 1e3:.1f} ms, GCN {t_g * 1e3:.1f} ms, ratio {t_m / t_g:.2f}",
                  flush=True)
            # The reference width 16 / d' 6 keeps the protocol name of the earlier records.
            size = "" if (hidden, d) == (16, 6) else f"-w{hidden}-d{d}"
            append_record(OUT, make_record(
                "MGNN/GCN epoch", "cora", f"epoch-ratio-{label}-{pairs}{size}", 0,
                {"mgnn_ms": t_m * 1e3, "gcn_ms": t_g * 1e3, "ratio": t_m / t_g}, t_m, dev,
                hidden=hidden, compress_channels=d, num_threads=torch.get_num_threads()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=["motifs", "epoch", "all"], default="all")
    parser.add_argument("--pairs", nargs="+", choices=["all", "edges", "reference"],
                        default=["all", "edges", "reference"],
                        help="motif pair sets timed by the epoch part")
    parser.add_argument("--naive-nodes", type=int, default=10_000)
    parser.add_argument("--naive-edges", type=int, default=50_000)
    parser.add_argument("--big-nodes", type=int, default=200_000)
    parser.add_argument("--big-edges", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--hidden", type=int, nargs="+", default=[16],
                        help="--part epoch: widths (MGNN and GCN alike)")
    parser.add_argument("--compress-channels", type=int, default=6,
                        help="--part epoch: MGNN's d' per motif")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.part in ("epoch", "all"):
        epoch_ratio(args)
    if args.part in ("motifs", "all"):
        motif_speed(args)


if __name__ == "__main__":
    main()
