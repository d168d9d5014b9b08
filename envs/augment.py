"""More training pictures from the same ones: mirrored, shifted against the CTU grid, scaled down.

The picture policies learn from few pictures (128 on detection), and on held-aside pictures longer
training does worse (``benchmarks/results/detection-timesteps``): the net fits the training
pictures' tables, not the task. Each transformation here gives the codec and the task net a picture
they code and see differently, so its table is new data, not a copy:

- ``flip``: mirrored left to right. Intra prediction runs from the left and top neighbours, so
  the bits of a mirrored block differ; the net's output mirrors only roughly.
- ``shift``: :data:`SHIFT` pixels cut off the top and the left, so every 64x64 CTU (and every
  16x16 block) holds a part of the picture no training CTU held in that place.
- ``scale``: scaled by :data:`SCALE` (area averaging), so the objects are smaller, as the policy
  meets them on video and in wide shots.

The task net's output on the transformed picture is its own reference (pseudo ground truth), as
for every training picture, so no labels need transforming.

Measured on detection pictures held aside from training, none is the default: the three together
did 5 points worse against constant QP than no copies, ``flip`` and ``shift`` alone 0.7 and 1.6
points better, short of the 2-point margin the rule asked; ``shift`` on a second held-aside fold
0.2 points worse, 0.7 better over both folds and four seeds (``benchmarks/results/augmentation``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from envs.tables import MIN_SIZE, Picture, make_picture
from semrl.errors import InvalidInputError

SHIFT = 32
"""Pixels ``shift`` cuts off the top and the left: half a CTU, so each CTU straddles four old ones."""

SCALE = 0.75
"""Factor ``scale`` resizes by."""


def _flip(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.ascontiguousarray(frame[:, ::-1])


def _shift(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.ascontiguousarray(frame[SHIFT:, SHIFT:])


def _scale(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
    import cv2

    h, w = frame.shape[:2]
    size = (2 * round(w * SCALE / 2), 2 * round(h * SCALE / 2))
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


AUGMENTATIONS: dict[str, Callable[[NDArray[np.uint8]], NDArray[np.uint8]]] = {
    "flip": _flip,
    "shift": _shift,
    "scale": _scale,
}
"""The transformations by name, in the order their copies follow the originals."""


def check_augmentations(kinds: Sequence[str]) -> tuple[str, ...]:
    """The names of ``kinds``, checked: each known, none twice.

    Raises:
        InvalidInputError: An unknown or repeated name.
    """
    unknown = [k for k in kinds if k not in AUGMENTATIONS]
    if unknown:
        raise InvalidInputError(f"unknown augmentation {unknown[0]!r}; expected some of {', '.join(AUGMENTATIONS)}")
    if len(set(kinds)) < len(kinds):
        raise InvalidInputError(f"augmentations named twice: {', '.join(kinds)}")
    return tuple(kinds)


def augment_pictures(pictures: Sequence[Picture], kinds: Sequence[str]) -> list[Picture]:
    """The pictures, then for each transformation in ``kinds`` a transformed copy of each.

    Copies are named ``<name>~<kind>``; a copy smaller than :data:`envs.tables.MIN_SIZE` on a side
    is left out (the encoder cannot open it), as :func:`envs.tables.load_pictures` leaves out such
    pictures.

    Raises:
        InvalidInputError: An unknown or repeated transformation.
    """
    out = list(pictures)
    for kind in check_augmentations(kinds):
        transform = AUGMENTATIONS[kind]
        for picture in pictures:
            frame = transform(picture.frame)
            if min(frame.shape[:2]) >= MIN_SIZE:
                out.append(make_picture(f"{picture.name}~{kind}", frame))
    return out
