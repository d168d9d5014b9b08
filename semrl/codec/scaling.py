"""HEVC scaling lists: quantisation matrices that quantise a transform block's high frequencies coarser.

A scaling list weighs each coefficient's quantisation step (16 is the flat step of the base QP).
The lists travel in the stream's sequence parameter set, so any HEVC decoder plays the result; x265
reads them from a file in HM's text format (``--scaling-list FILE``).

The family here is one shape for every block size, prediction and colour plane: the weight rises
from 16 at DC with the coefficient's diagonal frequency, ``16 * (1 + slope * f ** power)`` where
``f = (u + v) / (2n - 2)`` runs from 0 at DC to 1 at the highest frequency of an ``n x n`` list
(16x16 and 32x32 blocks use the 8x8 list, upsampled, as HEVC signals them). A positive slope
keeps a block's bits in its low frequencies and codes the fine texture coarser; 0 is flat (HEVC
without scaling lists). On constant-QP pictures the detector and the segmentation net keep their
accuracy with 14-15 % fewer bits this way (``benchmarks/results/scaling-lists``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from semrl.errors import InvalidInputError
from semrl.files import atomic_write

FLAT_WEIGHT = 16
"""HEVC's neutral weight: the base QP's own step."""

MAX_SLOPE = (255 / FLAT_WEIGHT) - 1
"""The steepest slope whose highest weight still fits HEVC's 8-bit scaling factors."""

# HM's names of the lists, in the order of its files; 32x32 has luma lists only.
_PLANES = ("LUMA", "CHROMAU", "CHROMAV")


@dataclass(frozen=True)
class ScalingLists:
    """Quantisation matrices rising from DC to the highest frequency (see the module docstring).

    Attributes:
        slope: How much coarser the highest frequency is quantised than DC, less one (0: flat;
            3: four times the step). At least -0.9 and at most :data:`MAX_SLOPE`.
        power: How the weight rises with frequency (1: linearly; 2: slowly at first).
    """

    slope: float
    power: float = 1.0

    def __post_init__(self) -> None:
        if not -0.9 <= self.slope <= MAX_SLOPE:
            raise InvalidInputError(f"scaling-list slope must be in -0.9..{MAX_SLOPE:g}, got {self.slope}")
        if not 0.25 <= self.power <= 4:
            raise InvalidInputError(f"scaling-list power must be in 0.25..4, got {self.power}")

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> ScalingLists:
        """Parse a config's ``{"slope": s, "power": p}``.

        Raises:
            InvalidInputError: An unknown key, a missing slope or a value out of range.
        """
        unknown = set(data) - {"slope", "power"}
        if unknown or "slope" not in data:
            raise InvalidInputError(f"scaling lists take slope (and power), got {sorted(data)}")
        return cls(float(data["slope"]), float(data.get("power", 1.0)))

    @classmethod
    def from_config(cls, data: dict[str, float] | None) -> ScalingLists | None:
        """A config's quantisation: None (absent, empty, or slope 0) is flat, as x265 codes without lists.

        Raises:
            InvalidInputError: An unknown key, a missing slope or a value out of range.
        """
        if not data:
            return None
        lists = cls.from_dict(data)
        return None if lists.slope == 0 else lists

    def to_dict(self) -> dict[str, float]:
        """The config form :meth:`from_dict` reads."""
        return {"slope": self.slope, "power": self.power}

    @property
    def tag(self) -> str:
        """Identifies the matrices in fingerprints and reports."""
        return f"sl={self.slope:g}^{self.power:g}"

    def matrix(self, n: int) -> npt.NDArray[np.int32]:
        """The ``n x n`` list (n 4 or 8), rows by vertical frequency."""
        if n not in (4, 8):
            raise ValueError(f"HEVC signals 4x4 and 8x8 lists, not {n}x{n}")
        freq = np.add.outer(np.arange(n), np.arange(n)) / (2 * n - 2)
        weights = np.rint(FLAT_WEIGHT * (1 + self.slope * freq**self.power))
        return np.clip(weights, 1, 255).astype(np.int32)

    def hm_text(self) -> str:
        """The lists in HM's text format, as x265's ``--scaling-list FILE`` reads them."""
        lines = []
        for size in (4, 8, 16, 32):
            matrix = self.matrix(min(size, 8))
            for prediction in ("INTRA", "INTER"):
                for plane in _PLANES if size < 32 else _PLANES[:1]:
                    name = f"{prediction}{size}X{size}_{plane}"
                    lines.append(f"{name} =")
                    lines += [",".join(str(int(w)) for w in row) + "," for row in matrix]
                    if size >= 16:
                        lines += [f"{name}_DC =", f"{int(matrix[0, 0])},"]
        return "\n".join(lines) + "\n"

    def file(self, folder: Path) -> Path:
        """The lists' HM file in ``folder``, named by its content and written once (atomically).

        Raises:
            InvalidInputError: ``folder`` cannot be written.
        """
        text = self.hm_text()
        path = folder / f"scaling-lists-{hashlib.sha256(text.encode()).hexdigest()[:16]}.txt"
        if not path.exists():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write(path, text)
            except OSError as exc:
                raise InvalidInputError(
                    f"cannot write the scaling lists x265 reads to {path}: {exc}; "
                    "point SEMRL_CACHE at a writable folder"
                ) from exc
        return path
