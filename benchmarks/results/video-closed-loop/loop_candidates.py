"""Low delay with the decoded picture's detections in the loop: the objects coding has just lost get more bits.

Every video coding so far decides from the original frames only. Here the reference coding (``video-reference``:
the 8-frame cascade, the IDR frame 3 QP finer, ROI D=4) is kept, and after each frame is coded the detector runs
on its reconstruction, as a decoder would show it. An object of the original frame (the detector's find at
``REGION_CONF`` or more, the pseudo ground truth's objects) that the reconstruction does not give back, no find
of its class overlapping it by ``iou`` or more, is *lost*; in the next frame, which leans on this one, the CTUs
touching the lost objects (grown as ROI grows them) are coded ``boost`` QP finer. Nothing else changes.

The benchmark computes a policy's offsets before it codes (the cache key holds them), so the policy codes each
frame itself with a private encoder of the benchmark's configuration (low delay returns every frame as it is
given): the benchmark's own coding then makes the same pictures, since x265 is deterministic. That assumes the
benchmark's defaults (preset medium, no ``--x265`` options, ``--gop ldp``); ``simulated.jsonl`` records each
clip-point's bits for the check against the benchmark's. Run with ``benchmarks/bdrate.py --policy
lost4=<this file>:lost4``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semrl.agent.video import ReferenceVideoPolicy
from semrl.codec import CTU_SIZE, QP_MAX, Encoder, EncoderConfig, Gop
from semrl.policy import PolicyInput, clip_offsets, roi_blocks
from semrl.semantics.regions import box_region

_HERE = Path(__file__).resolve().parent
_STATE = "loop_candidates"
_NET: list[Any] = []
_REFERENCE = ReferenceVideoPolicy()


def _net() -> Any:
    """The benchmark's video detector, loaded once per process."""
    if not _NET:
        from semrl.assets import resolve_weights
        from semrl.semantics.yolo import YoloNet

        _NET.append(YoloNet(resolve_weights("yolov8n.pt"), device="cpu"))
    return _NET[0]


def _decoded_objects(recon_rgb: NDArray[np.uint8]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The detector's objects (>= REGION_CONF) on a reconstruction, as the benchmark's analysis finds them."""
    from semrl.bench.tasknet import net_threads
    from semrl.semantics.regions import object_regions
    from semrl.semantics.yolo import InferenceSettings

    with net_threads():
        found = object_regions(_net().detect([recon_rgb], InferenceSettings(), color="rgb")[0])
    return found.boxes.astype(np.float32), found.cls.astype(np.int64)


def lost_objects(
    boxes: NDArray[np.float32],
    cls: NDArray[np.int64],
    found: NDArray[np.float32],
    found_cls: NDArray[np.int64],
    iou: float,
) -> NDArray[np.bool_]:
    """Which original objects no decoded find of their class overlaps by ``iou`` or more."""
    from semrl.fidelity.detection import same_class_iou

    found_once = (same_class_iou(boxes, cls, found, found_cls) >= iou).any(axis=1)
    return np.logical_not(found_once)


@dataclass(frozen=True)
class LostObjectsBoost:
    """``video-reference``, plus ``boost`` QP finer in the next frame for the objects the reconstruction lost.

    ``anchors_only``: the boost goes only to the cascade's anchor frames (the IDR frame and every 4th
    frame, offsets 0 and +2), for the objects the frame before the anchor lost.
    """

    boost: int
    iou: float = 0.7
    preset: str = "medium"
    anchors_only: bool = False
    needs_regions = True
    needs_rgb = False
    offset_block = CTU_SIZE

    @property
    def fingerprint(self) -> str:
        """Identifies the behaviour."""
        anchors = ":anchors" if self.anchors_only else ""
        return f"lost-objects-boost:b={self.boost}:iou={self.iou:g}{anchors}:{_REFERENCE.fingerprint}:{self.preset}"

    def __call__(self, inputs: PolicyInput) -> NDArray[np.int32]:
        """The frame's offsets per CTU; codes the frame on trial to see what a decoder will show."""
        if inputs.picture is None or inputs.luma is None:
            raise RuntimeError("LostObjectsBoost codes each frame on trial and needs the coded YUV picture")
        base = int(inputs.base_qp)
        reference = np.asarray(_REFERENCE(inputs), np.int32)
        state = inputs.state.get(_STATE)
        if state is None or inputs.gop.position(inputs.frame_index) == 0:
            state = inputs.state[_STATE] = {
                "encoder": _open_encoder(inputs, base, self.preset), "lost": None,
                "clip": hashlib.sha256(inputs.picture.y.tobytes()).hexdigest()[:16],
            }  # fmt: skip
        lost_ctus = state["lost"]
        if self.anchors_only and inputs.gop.position(inputs.frame_index) % 4:
            lost_ctus = None  # only the cascade's anchors, which the next frames lean on, are boosted
        offsets = (reference if lost_ctus is None else np.where(lost_ctus, reference - self.boost, reference)).astype(
            np.int32
        )
        coded = state["encoder"].encode(inputs.picture, clip_offsets(offsets, base, min(base, QP_MAX)))
        if len(coded) != 1:
            raise RuntimeError(f"low delay returned {len(coded)} frames for frame {inputs.frame_index}")
        frame = coded[0]
        _record(self, inputs, base, int(frame.bits))
        h, w = inputs.region.shape if inputs.region is not None else inputs.luma.shape
        found, found_cls = _decoded_objects(frame.recon.to_rgb()[:h, :w])
        lost = lost_objects(inputs.boxes, inputs.cls, found, found_cls, self.iou)
        state["lost"] = (
            roi_blocks(box_region(inputs.boxes[lost], (h, w)), inputs.ctu_shape, _REFERENCE.settings.dilation)
            if lost.any()
            else None
        )
        return offsets


_OPEN: list[Encoder] = []


def _open_encoder(inputs: PolicyInput, base: int, preset: str) -> Encoder:
    """A low-delay encoder as the benchmark opens one for this clip and point (the previous clip's is closed)."""
    while _OPEN:
        _OPEN.pop().close()
    h, w = inputs.luma.shape if inputs.luma is not None else inputs.frame.shape[:2]
    config = EncoderConfig(
        w, h, qp=min(base, QP_MAX), preset=preset, gop=Gop.LOW_DELAY_P, keyint=inputs.gop.keyint, qg_size=CTU_SIZE
    )
    _OPEN.append(Encoder(config))
    return _OPEN[0]


def _record(policy: LostObjectsBoost, inputs: PolicyInput, base: int, bits: int) -> None:
    """One line per coded frame: what the private encoder spent, for the check against the benchmark's bits."""
    line = {"policy": policy.fingerprint, "base_qp": base, "frame": inputs.frame_index, "bits": bits,
            "clip": inputs.state[_STATE]["clip"]}  # fmt: skip
    with open(_HERE / "simulated.jsonl", "a") as log:
        log.write(json.dumps(line) + "\n")


lost4 = LostObjectsBoost(4)
lost8 = LostObjectsBoost(8)
lost8_anchor = LostObjectsBoost(8, anchors_only=True)
