"""EMO in a few lines: build EMO-1M, count its size, and train a tiny EMO on digits (about 15 s).

Run: ``python examples/vision_emo.py``
"""

import torch

from graphkit.vision import emo
from graphkit.vision.cnn_zoo import accuracy, fit_classifier, load_digits_tensors

model = emo.emo_1m()  # 1000 classes, as in the paper
print("EMO-1M parameters:", sum(p.numel() for p in model.parameters()))  # 1,361,168

x_tr, y_tr, x_te, y_te = load_digits_tensors(size=32, channels=3)
torch.manual_seed(0)
tiny = emo.EMO(num_classes=10, depths=(1, 1, 2, 1), stem_dim=16, embed_dims=(16, 24, 32, 48),
               exp_ratios=(2, 2, 2, 2), dim_heads=(16, 16, 16, 16))
fit_classifier(tiny, x_tr, y_tr, epochs=4, lr=4e-3, weight_decay=0.05)
print(f"tiny EMO digits test accuracy: {accuracy(tiny, x_te, y_te):.3f}")
