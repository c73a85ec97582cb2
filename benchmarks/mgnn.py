"""MGNN accuracy benchmark: MGNN and PyG GCN/GraphSAGE/GAT/GIN under the MGNN paper's protocols.

Paper: https://arxiv.org/abs/2112.14900 (Chen et al., IEEE TNNLS 2023).

Appends one record per seed (node sets) or fold (graph sets) to ``benchmarks/results/mgnn.jsonl``
and resumes where a previous run stopped. Run (2 shared CPU cores; the full list takes hours)::

    GRAPHKIT_DATA=/work/shared/datasets OMP_NUM_THREADS=1 python -m benchmarks.mgnn [--only cora]

Epochs are reduced from the reference (3000 node / 300 graph) to fit the machine; every record
carries its epoch count. ``--graph-ref`` runs the graph sets under ``cv5-ref`` (or ``cv10-ref``
with ``--ref-folds 10``), the reference code's graph pipeline (features, motif matrices, widths,
init, 300 epochs; the library protocol of :func:`graphkit.commands.mgnn.run_protocol`)::

    python -m benchmarks.mgnn --graph-ref --only mutag enzymes --models mgnn gcn gin
    python -m benchmarks.mgnn --graph-ref --ref-folds 10 --only mutag --models mgnn gcn gin
    python -m benchmarks.mgnn --graph-ref --searched --only mutag enzymes   # cv5-ref-searched

``--reference-split`` runs the node sets on the reference scripts' own split (Cora split seed 55,
CiteSeer 161: protocol ``paper@55`` / ``paper@161``), the seed changing only the
initialization, for 3000 epochs without early stopping, test accuracy at the best validation
epoch, as ``MGNN_Node/main.py`` does; with ``--node-es`` under the early stopping of the main
node table instead (``paper@55-es``), so that only the split differs from it::

    python -m benchmarks.mgnn --reference-split --node-es --only cora citeseer --models mgnn gcn
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch

from benchmarks.harness import RESULTS
from graphkit.commands.mgnn import REF_EPOCHS, REF_GRAPH_CONFIG, run_protocol

OUT = RESULTS / "mgnn.jsonl"
MODELS = ("mgnn", "gcn", "sage", "gat", "gin")
# (dataset, protocol, seeds, epochs) in priority order.
PLAN = [
    ("cora", "paper", 5, 200), ("citeseer", "paper", 5, 200),
    ("mutag", "cv5", 5, 100), ("enzymes", "cv5", 5, 100),
    ("proteins", "cv5", 5, 100), ("nci1", "cv5", 5, 50), ("imdb-binary", "cv5", 5, 100),
    ("cora", "public", 5, 200), ("citeseer", "public", 5, 200),
    ("mutag", "cv10", 10, 100), ("enzymes", "cv10", 10, 100),
]

# ``cv5-ref``/``cv10-ref``: the reference code's graph pipeline, now a library protocol
# (graphkit.commands.mgnn.REF_GRAPH_CONFIG: use_node_attr features, pairs="reference", widths
# 16, C, C, Kaiming init, 300 epochs). Kept here under the old names for scripts and tests.
REF_PROTOCOL = "cv5-ref"
REF_MGNN = REF_GRAPH_CONFIG


def build_reference_mgnn(in_channels: int, num_classes: int) -> torch.nn.Module:
    """MGNN as ``MGNN_Graph/main.py`` builds it (widths 16, C, C; Kaiming-uniform init): the
    library's ``cv5-ref`` model."""
    from graphkit.commands.mgnn import build_model
    return build_model("mgnn", in_channels, num_classes, "graph", **REF_GRAPH_CONFIG)


def run_reference_cv(dataset: str, model_name: str, epochs: int = REF_EPOCHS, folds: int = 5,
                     log: Any = print, searched: bool = False) -> list[float]:
    """``cv5-ref`` (``folds=5``) or ``cv10-ref`` for one model and dataset through
    :func:`~graphkit.commands.mgnn.run_protocol` (``searched``: with the stage-H settings,
    protocol ``cv5-ref-searched``); one record per fold to ``OUT``, resumable.
    Returns the test accuracies of the folds run now."""
    res = run_protocol(dataset, f"cv{folds}-ref", model_name, folds, epochs, out=str(OUT),
                       resume=True, device="cpu", log=log, searched=searched)
    return res["accs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="datasets to run")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--protocols", nargs="*", default=None)
    parser.add_argument("--node-es", action="store_true",
                        help="node sets only, early stopping on validation accuracy (records "
                             "'<protocol>-es' for each of --protocols, default paper): up to "
                             "--epochs epochs, --patience, --seeds seeds")
    parser.add_argument("--epochs", type=int, default=None,
                        help="node epochs (default 1000 with --node-es, 3000 with "
                             "--reference-split)")
    parser.add_argument("--reference-split", action="store_true",
                        help="node sets on the reference scripts' split (paper@55, paper@161); "
                             "with --node-es early stopping as the main node table")
    parser.add_argument("--reference-config", action="store_true",
                        help="node sets, MGNN only: the released scripts' settings "
                             "(REFERENCE_NODE_CONFIG; records '<protocol>-refcfg')")
    parser.add_argument("--patience", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--graph-ref", action="store_true",
                        help="graph sets under cv5-ref/cv10-ref (reference pipeline, "
                             f"--ref-epochs, default {REF_EPOCHS}) for --only and --models")
    parser.add_argument("--ref-epochs", type=int, default=REF_EPOCHS)
    parser.add_argument("--ref-folds", type=int, choices=(5, 10), default=5)
    parser.add_argument("--searched", action="store_true",
                        help="--graph-ref (5 folds only) with the validation-searched settings "
                             "(GRAPH_SEARCHED, benchmarks.mgnn_search stage H)")
    args = parser.parse_args()
    if args.reference_config and not (args.reference_split or args.node_es):
        parser.error("--reference-config applies to the node runs: add --reference-split "
                     "or --node-es")
    node_config = "reference" if args.reference_config else "searched"
    if args.graph_ref:
        for dataset in args.only or ("mutag", "enzymes"):
            for model in args.models:
                accs = run_reference_cv(dataset, model, args.ref_epochs, args.ref_folds,
                                        searched=args.searched)
                if accs:
                    print(f"== {model} {dataset} cv{args.ref_folds}-ref"
                          f"{'-searched' if args.searched else ''}: new folds "
                          f"{np.mean(accs):.4f} ± {np.std(accs):.4f}", flush=True)
        return
    if args.reference_split:
        for dataset in args.only or ("cora", "citeseer"):
            for model in args.models:
                res = run_protocol(dataset, "paper", model, args.seeds,
                                   args.epochs or (1000 if args.node_es else 3000),
                                   out=str(OUT), resume=True, device="cpu", log=print,
                                   split_seed="reference",
                                   patience=args.patience if args.node_es else None,
                                   node_config=node_config)
                print(f"== {res['model']} {dataset} {res['protocol']}: {res['acc_mean']:.4f} ± "
                      f"{res['acc_std']:.4f} (new seeds {res['seeds']})", flush=True)
        return
    if args.node_es:
        for protocol in args.protocols or ("paper",):
            for dataset in args.only or ("cora", "citeseer"):
                for model in args.models:
                    res = run_protocol(dataset, protocol, model, args.seeds, args.epochs or 1000,
                                       out=str(OUT), resume=True, device="cpu", log=print,
                                       patience=args.patience, node_config=node_config)
                    print(f"== {res['model']} {dataset} {res['protocol']}: {res['acc_mean']:.4f} ± "
                          f"{res['acc_std']:.4f} (new seeds {res['seeds']})", flush=True)
        return
    for dataset, protocol, seeds, epochs in PLAN:
        if args.only and dataset not in args.only:
            continue
        if args.protocols and protocol not in args.protocols:
            continue
        for model in args.models:
            res = run_protocol(dataset, protocol, model, seeds, epochs, out=str(OUT), resume=True,
                               device="cpu", log=print)
            print(f"== {res['model']} {dataset} {protocol}: {res['acc_mean']:.4f} ± "
                  f"{res['acc_std']:.4f} (new seeds {res['seeds']})", flush=True)


if __name__ == "__main__":
    main()
