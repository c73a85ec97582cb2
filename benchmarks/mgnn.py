"""MGNN accuracy benchmark: MGNN and PyG GCN/GraphSAGE/GAT/GIN under the MGNN paper's protocols.

Appends one record per seed (node sets) or fold (graph sets) to ``benchmarks/results/mgnn.jsonl``
and resumes where a previous run stopped. Run (2 shared CPU cores; the full list takes hours)::

    GRAPHKIT_DATA=/work/shared/datasets OMP_NUM_THREADS=1 python -m benchmarks.mgnn [--only cora]

Epochs are reduced from the reference (3000 node / 300 graph) to fit the machine; every record
carries its epoch count.
"""

from __future__ import annotations

import argparse

from benchmarks.harness import RESULTS
from graphkit.commands.mgnn import run_protocol

OUT = RESULTS / "mgnn.jsonl"
MODELS = ("mgnn", "gcn", "sage", "gat", "gin")
# (dataset, protocol, seeds, epochs) in priority order.
PLAN = [
    ("cora", "paper", 5, 200), ("citeseer", "paper", 5, 200),
    ("mutag", "cv5", 5, 100), ("enzymes", "cv5", 5, 100),
    ("proteins", "cv5", 5, 50), ("nci1", "cv5", 5, 30), ("imdb-binary", "cv5", 5, 50),
    ("cora", "public", 5, 200), ("citeseer", "public", 5, 200),
    ("mutag", "cv10", 10, 100), ("enzymes", "cv10", 10, 100),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="datasets to run")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--protocols", nargs="*", default=None)
    parser.add_argument("--node-es", action="store_true",
                        help="node sets only, early stopping on validation accuracy (records "
                             "'<protocol>-es' for each of --protocols, default paper): up to "
                             "--epochs epochs, --patience, --seeds seeds")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--patience", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if args.node_es:
        for protocol in args.protocols or ("paper",):
            for dataset in args.only or ("cora", "citeseer"):
                for model in args.models:
                    res = run_protocol(dataset, protocol, model, args.seeds, args.epochs,
                                       out=str(OUT), resume=True, device="cpu", log=print,
                                       patience=args.patience)
                    print(f"== {res['model']} {dataset} {protocol}-es: {res['acc_mean']:.4f} ± "
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
