"""Vision-paper adapters in plain PyTorch (no torchvision or timm), one submodule per paper.

Submodules are imported on first use (``graphkit.vision.emo`` etc.), so importing graphkit stays
fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SUBMODULES = ("emo", "qsfm", "r2rise", "glance", "cmt", "distill_backdoor", "reft")

__all__ = list(SUBMODULES)


def __getattr__(name: str) -> ModuleType:
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
