"""Classification fidelity: top-1 against labels and top-1 agreement with the uncompressed frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InvalidInputError


def _top1(probs: NDArray[np.floating]) -> NDArray[np.int64]:
    p = np.asarray(probs)
    if p.ndim != 2:
        raise InvalidInputError(f"class probabilities must be (N, classes), got {p.shape}")
    top: NDArray[np.int64] = p.argmax(axis=1).astype(np.int64)
    return top


def top1_accuracy(
    probs: NDArray[np.floating], labels: Sequence[int] | NDArray[np.integer]
) -> float:
    """Share of frames whose most probable class is the label.

    Args:
        probs: (N, classes) scores, e.g. from :meth:`semrl.semantics.yolo.YoloNet.classify`.
        labels: (N,) class ids in the net's numbering.

    Returns:
        Top-1 accuracy in 0..1 (NaN for no frames).
    """
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    pred = _top1(probs)
    if len(pred) != len(lab):
        raise InvalidInputError(f"{len(pred)} predictions but {len(lab)} labels")
    return float((pred == lab).mean()) if len(lab) else float("nan")


def top1_agreement(probs: NDArray[np.floating], reference_probs: NDArray[np.floating]) -> float:
    """Share of frames whose top-1 class equals the top-1 class on the uncompressed frame."""
    return top1_accuracy(probs, _top1(reference_probs))
