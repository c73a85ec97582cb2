import pytest
import torch
from torch import nn

from graphkit import GraphError
from graphkit.vision import qsfm
from graphkit.vision.cnn_zoo import (
    accuracy,
    digits_cnn,
    fit_classifier,
    load_digits_splits,
    load_digits_tensors,
    plant_duplicates,
)

# the digits protocol of benchmarks/vision_qsfm.py: this recipe won its 3-recipe grid on unpruned
# VALIDATION accuracy (seed 0, 20% of the training part held out); no test labels were used
TRAIN = dict(epochs=40, lr=3e-3, batch_size=128, schedule="onecycle")
RESNET56_RATIOS = (0.4375, 0.5, 0.625)  # per stage; reaches the paper's compression


@pytest.fixture(scope="session")
def digits():
    x_tr, y_tr, _, _, x_te, y_te = load_digits_splits(seed=0)  # validation part unused here
    return x_tr, y_tr, x_te, y_te


@pytest.fixture(scope="session")
def trained(digits):
    x_tr, y_tr, _, _ = digits
    torch.manual_seed(0)
    return fit_classifier(digits_cnn(), x_tr, y_tr, seed=0, device="cpu", **TRAIN)


def test_planted_duplicates_are_found(trained, digits):
    x_tr, _, x_te, _ = digits
    dup = [1, 4, 7, 10, 13, 20, 25, 30]
    wide = plant_duplicates(trained, dup)
    with torch.no_grad():
        assert torch.allclose(wide(x_te), trained(x_te), atol=1e-4)
    pruned, report = qsfm.prune(wide, x_tr[:256], ratio=8 / 40, layers=["0"])
    assert report.removed["0"] == list(range(32, 40))
    assert report.channels["0"] == (40, 32)
    with torch.no_grad():
        assert (pruned(x_te) - wide(x_te)).abs().max() < 1e-4


def test_quarter_of_a_layer_without_finetuning(trained, digits):
    x_tr, _, x_te, y_te = digits
    calib = x_tr[:256]
    base = accuracy(trained, x_te, y_te)
    acc = {c: accuracy(qsfm.prune(trained, calib, 0.25, ["0"], criterion=c)[0], x_te, y_te)
           for c in ("qsfm", "l1")}
    acc["random"] = sum(accuracy(qsfm.prune(trained, calib, 0.25, ["0"], criterion="random",
                                            seed=s)[0], x_te, y_te) for s in range(5)) / 5
    # seed 0 only; over 5 seeds the L1 margin is 19.9 +- 13.6 points and falls below 15 on 2 of
    # them (benchmarks/notes/vision_qsfm.md)
    assert base - acc["qsfm"] <= 0.04
    assert acc["qsfm"] - acc["l1"] >= 0.15
    assert acc["qsfm"] - acc["random"] >= 0.15


def resnet56_analytic(inner: list[int], num_classes: int = 10) -> tuple[int, int]:
    """Parameters and multiply-adds of a CIFAR ResNet-56 whose 27 blocks have ``inner`` widths."""
    widths, sizes = [16] * 9 + [32] * 9 + [64] * 9, [32] * 9 + [16] * 9 + [8] * 9
    params, macs, c_in = 27 * 16 + 32, 27 * 16 * 32 * 32, 16
    for c, hw, m in zip(widths, sizes, inner, strict=True):
        params += 9 * c_in * m + 2 * m + 9 * m * c + 2 * c
        macs += 9 * (c_in * m + m * c) * hw * hw
        c_in = c
    return params + 64 * num_classes + num_classes, macs + 64 * num_classes


def test_resnet56_compression_matches_analytic_count():
    torch.manual_seed(0)
    model = qsfm.resnet56()
    full = [16] * 9 + [32] * 9 + [64] * 9
    assert (qsfm.count_params(model), qsfm.count_macs(model, torch.randn(1, 3, 32, 32))) == \
        resnet56_analytic(full) == (853_018, 125_485_696)
    ratios = {f"blocks.{b}": RESNET56_RATIOS[b // 9] for b in range(27)}
    pruned, report = qsfm.prune(model, torch.randn(8, 3, 32, 32), ratio=ratios)
    inner = [report.channels[f"blocks.{b}"][1] for b in range(27)]
    assert inner == [16 - 7] * 9 + [32 - 16] * 9 + [64 - 40] * 9
    assert (report.params_after, report.macs_after) == resnet56_analytic(inner)
    assert report.macs_reduction >= 0.487 and report.params_reduction >= 0.579
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_mobilenet_v2_inverted_residuals():
    assert qsfm.count_params(qsfm.mobilenet_v2()) == 3_504_872
    torch.manual_seed(0)
    model = qsfm.mobilenet_v2(num_classes=10, width_mult=0.25)
    x = torch.randn(6, 3, 32, 32)
    pruned, report = qsfm.prune(model, x, ratio=0.3)
    assert len(report.removed) == 16  # every block with an expansion
    block = pruned.features[4]
    kept = report.channels["features.4"][1]
    assert block.expand[0].out_channels == block.dw.groups == block.project.in_channels == kept
    assert report.params_after == qsfm.count_params(pruned) < report.params_before
    assert report.macs_after < report.macs_before
    assert pruned(x).shape == (6, 10)


def test_linear_consumer_and_dead_channel_are_exact():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)).eval()
    with torch.no_grad():
        model[0].weight[3] = 2 * model[0].weight[1]  # ReLU(2z) = 2 ReLU(z): perfectly redundant
        model[0].bias[3] = 2 * model[0].bias[1]
    x = torch.randn(32, 1, 8, 8)
    pruned, report = qsfm.prune(model, x, ratio=0.25)
    assert report.removed == {"0": [3]}
    with torch.no_grad():
        assert torch.allclose(pruned(x), model(x), atol=1e-5)
        model[0].weight[3] = torch.randn(1, 3, 3)  # no longer a duplicate
        model[0].weight[2] = 0
        model[0].bias[2] = -1.0  # dead after ReLU: replaced by the constant 0
    pruned, report = qsfm.prune(model, x, ratio=0.25)
    assert report.removed == {"0": [2]}
    with torch.no_grad():
        assert torch.allclose(pruned(x), model(x), atol=1e-5)


@pytest.mark.parametrize("sim", ["cosine", lambda x: torch.corrcoef(x).abs()])
def test_pluggable_similarity(trained, digits, sim):
    pruned, report = qsfm.prune(trained, digits[0][:64], 0.25, ["0"], similarity=sim)
    assert report.channels["0"] == (32, 24) and pruned[0].out_channels == 24


@pytest.mark.parametrize("kwargs,match", [
    (dict(ratio=0.0), "ratio"), (dict(ratio=1.0), "ratio"), (dict(ratio=1.5), "ratio"),
    (dict(layers=["9"]), "unknown unit"), (dict(criterion="taylor"), "criterion"),
    (dict(similarity="ssim"), "similarity")])
def test_bad_arguments(kwargs, match):
    model = digits_cnn(8, 8)
    with pytest.raises(GraphError, match=match):
        qsfm.prune(model, torch.randn(4, 1, 8, 8), **kwargs)


def test_bad_inputs():
    with pytest.raises(GraphError, match="channels"):
        qsfm.prune(digits_cnn(8, 8), torch.randn(4, 3, 8, 8))
    with pytest.raises(GraphError, match="qsfm_units"):
        qsfm.prune(nn.Conv2d(1, 2, 3), torch.randn(4, 1, 8, 8))


def test_digits_validation_part_is_carved_from_training():
    x_tr, y_tr, x_va, y_va, x_te, y_te = load_digits_splits(seed=3)
    full_tr, full_y, ref_te, ref_y = load_digits_tensors(seed=3)
    assert (len(x_tr), len(x_va), len(x_te)) == (1005, 252, 540)
    assert torch.equal(x_te, ref_te) and torch.equal(y_te, ref_y)  # test part untouched
    # train + val is a permutation of the original training part
    key = lambda x: sorted(map(tuple, x.flatten(1).tolist()))  # noqa: E731
    assert key(torch.cat([x_tr, x_va])) == key(full_tr)
    assert sorted(torch.cat([y_tr, y_va]).tolist()) == sorted(full_y.tolist())
    with pytest.raises(GraphError, match="val_size"):
        load_digits_splits(val_size=1.0)
