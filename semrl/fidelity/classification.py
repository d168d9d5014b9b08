"""Classification fidelity: top-1 against labels and top-1 agreement with the uncompressed frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from semrl.errors import InvalidInputError


def top1_classes(probs: NDArray[np.floating]) -> NDArray[np.int64]:
    """The most probable class of each frame.

    Args:
        probs: (N, classes) scores, e.g. from :meth:`semrl.semantics.yolo.YoloNet.classify`.

    Returns:
        int64 (N,) class ids.
    """
    p = np.asarray(probs)
    if p.ndim != 2:
        raise InvalidInputError(f"class probabilities must be (N, classes), got {p.shape}")
    top: NDArray[np.int64] = p.argmax(axis=1).astype(np.int64)
    return top


def top1_of_classes(
    predicted: Sequence[int] | NDArray[np.integer], labels: Sequence[int] | NDArray[np.integer]
) -> float:
    """Share of frames whose predicted class is the label (the frames of any subset, pooled).

    Args:
        predicted: (N,) top-1 classes (:func:`top1_classes`).
        labels: (N,) class ids in the net's numbering.

    Returns:
        Top-1 accuracy in 0..1 (NaN for no frames).
    """
    pred = np.asarray(predicted, dtype=np.int64).reshape(-1)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(pred) != len(lab):
        raise InvalidInputError(f"{len(pred)} predictions but {len(lab)} labels")
    return float((pred == lab).mean()) if len(lab) else float("nan")


def top1_accuracy(probs: NDArray[np.floating], labels: Sequence[int] | NDArray[np.integer]) -> float:
    """Share of frames whose most probable class is the label.

    Args:
        probs: (N, classes) scores, e.g. from :meth:`semrl.semantics.yolo.YoloNet.classify`.
        labels: (N,) class ids in the net's numbering.

    Returns:
        Top-1 accuracy in 0..1 (NaN for no frames).
    """
    return top1_of_classes(top1_classes(probs), labels)


def top1_agreement(probs: NDArray[np.floating], reference_probs: NDArray[np.floating]) -> float:
    """Share of frames whose top-1 class equals the top-1 class on the uncompressed frame."""
    return top1_accuracy(probs, top1_classes(reference_probs))
