"""Equivalence check for ``cv5-ref``: the library's MGNN (widths 16, C, C) against the model the
benchmark used to build by patching (MGNN with one width 16, convs 2 and 3 replaced by width-C
MotifConvs, then Kaiming init; benchmarks/mgnn.py before commit 68ceaec), on MUTAG fold 0.

Prints the patched model's result (it reproduces the stored ``cv5-ref`` record), whether the two
builds have the same parameter shapes and initial values, and the library model's result when it
starts from the patched model's weights and RNG state. Run::

    GRAPHKIT_DATA=/work/shared/datasets OMP_NUM_THREADS=1 python -m benchmarks.mgnn_ref_equivalence
"""

from __future__ import annotations

import json

import numpy as np
import torch

from graphkit.commands.mgnn import (
    REF_GRAPH_CONFIG,
    _graph_features,
    _store_reference_motifs,
    build_model,
    reference_init,
    run_graph_fold,
)
from graphkit.data import load
from graphkit.data.splits import stratified_kfold
from graphkit.nn.motif_conv import MotifConv
from graphkit.runtime import seed_everything

R = REF_GRAPH_CONFIG


def old_build(in_ch: int, num_classes: int) -> torch.nn.Module:
    """The patched build of benchmarks/mgnn.py before 68ceaec."""
    cfg = {k: v for k, v in R.items() if k != "init"}
    cfg["widths"] = None  # the old build_model ignored widths
    model = build_model("mgnn", in_ch, num_classes, "graph", 16, 3, **cfg)
    for i in (1, 2):
        old = model.convs[i]
        model.convs[i] = MotifConv(old.in_channels, num_classes, old.compress_channels, old.motifs,
                                   pairs="reference", negative=old.negative,
                                   att_act=R["att_act"], motif_dropout=R["motif_dropout"],
                                   att_dropout=R["att_dropout"], cache_size=0)
    reference_init(model, R["init"])
    return model


def main() -> None:
    data = load("mutag", use_node_attr=True)
    graphs = _graph_features(data)
    _store_reference_motifs(graphs)
    C = int(data.num_classes)
    folds = stratified_kfold(graphs, 5, seed=12345)
    test_idx, val_idx = folds[0][1], folds[-1][1]
    train_idx = np.setdiff1d(np.arange(len(graphs)), np.concatenate([test_idx, val_idx]))

    def run(model: torch.nn.Module) -> dict:
        return run_graph_fold(model, graphs, train_idx, val_idx, test_idx, 300, R["lr"],
                              R["weight_decay"], R["batch_size"], torch.device("cpu"), 0)

    out: dict[str, object] = {}
    seed_everything(0)
    old = old_build(graphs[0].num_features, C)
    sd = {k: v.clone() for k, v in old.state_dict().items()}
    rng = torch.get_rng_state()
    r = run(old)
    out["old_patched"] = (r["test_acc"], r["best_epoch"])
    seed_everything(0)
    new = build_model("mgnn", graphs[0].num_features, C, "graph", **R)
    out["same_shapes"] = {k: tuple(v.shape) for k, v in new.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in sd.items()}
    out["same_init"] = all(torch.equal(new.state_dict()[k], sd[k]) for k in sd)
    out["first_diff"] = [k for k in sd if not torch.equal(new.state_dict()[k], sd[k])][:6]
    new.load_state_dict(sd)
    torch.set_rng_state(rng)
    r = run(new)
    out["library_with_old_init_and_rng"] = (r["test_acc"], r["best_epoch"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
