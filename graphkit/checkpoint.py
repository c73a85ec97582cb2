"""Checkpoints that load with ``torch.load(weights_only=True)`` and refuse a different model or
configuration with a clear error. Written atomically (temp file, then rename), so a run killed
mid-save leaves the previous checkpoint intact."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from graphkit.errors import GraphError
from graphkit.runtime import atomic_path

FORMAT = 1


def fingerprint(kind: str, config: dict[str, Any]) -> str:
    text = json.dumps({"kind": kind, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], *, kind: str,
                    config: dict[str, Any]) -> None:
    """Save ``state`` (tensors, numbers, strings, lists and dicts of them) for ``kind``."""
    payload = {"graphkit_checkpoint": FORMAT, "kind": kind,
               "config": json.dumps(config, sort_keys=True, default=str),
               "fingerprint": fingerprint(kind, config), "state": state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, *, kind: str, config: dict[str, Any],
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` for the same ``kind`` and ``config``.

    Raises:
        GraphError: the file is missing, not a graphkit checkpoint, not loadable with
            ``weights_only=True``, or was written for another model or configuration.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"checkpoint: {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise GraphError(f"checkpoint: {path} is not a loadable graphkit checkpoint "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("graphkit_checkpoint") != FORMAT:
        raise GraphError(f"checkpoint: {path} was not written by graphkit.save_checkpoint")
    if payload["kind"] != kind:
        raise GraphError(f"checkpoint: {path} holds a {payload['kind']!r} checkpoint, "
                         f"not {kind!r}")
    if payload["fingerprint"] != fingerprint(kind, config):
        theirs = json.loads(payload["config"])
        diff = sorted(k for k in set(theirs) | set(config)
                      if json.dumps(theirs.get(k), default=str)
                      != json.dumps(config.get(k), default=str))
        raise GraphError(f"checkpoint: {path} was written with a different configuration "
                         f"(differs in: {', '.join(diff) or 'values'})")
    return payload["state"]
