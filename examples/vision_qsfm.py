"""QSFM (reconstruction): prune 25% of a digits CNN's first conv without fine-tuning, compare
with L1-norm pruning, then report ResNet-56 compression.

Run: ``python examples/vision_qsfm.py``
"""

import torch

from graphkit.vision import qsfm
from graphkit.vision.cnn_zoo import accuracy, digits_cnn, fit_classifier, load_digits_tensors

x_tr, y_tr, x_te, y_te = load_digits_tensors()
torch.manual_seed(0)
model = fit_classifier(digits_cnn(), x_tr, y_tr, epochs=40, lr=3e-3, batch_size=128)
print(f"unpruned: {accuracy(model, x_te, y_te):.3f}")
for criterion in ("qsfm", "l1"):
    pruned, report = qsfm.prune(model, x_tr[:256], ratio=0.25, layers=["0"], criterion=criterion)
    print(f"{criterion}: {accuracy(pruned, x_te, y_te):.3f}  removed {report.removed['0']}")

ratios = {f"blocks.{b}": (0.4375, 0.5, 0.625)[b // 9] for b in range(27)}
_, report = qsfm.prune(qsfm.resnet56(), torch.randn(8, 3, 32, 32), ratio=ratios)
print(f"ResNet-56: params -{report.params_reduction:.1%}, "
      f"multiply-adds -{report.macs_reduction:.1%}")
