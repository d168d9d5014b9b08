"""Every picture of a train window at every base QP: A1, and the shipped policy's map shifted -6..+9 QP.

The shifts are of the shipped policy's map alone (its config's trade left out: that is what
``replay.py`` replays). Each coding is all-intra as ``benchmarks/bdrate.py`` codes it (its encoder configuration, the
policy's own quantisation groups and quantisation matrices); the reconstruction (what a decoder shows) is read by the
benchmark's net at the settings it scores with and matched twice: against the labels, and against
the net's own objects on the uncoded picture (what ``object_score`` reads; here on the original
RGB file, where the policy reads its 4:2:0 picture). Boxes for detection, masks for segmentation.
``replay.py`` replays the trade rule on these codings::

    python benchmarks/results/detection-trade/collect.py [--task segmentation] [--shifts -12,-9,12] START LIMIT OUT.pkl

``--shifts`` codes other shifts (A1 again too); ``replay.py`` reads the union of several files.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

QPS = (22, 27, 32, 37, 42, 47, 51)
SHIFTS: tuple[int, ...] = (-6, -3, 0, 3, 6, 9)
_state: dict[str, Any] = {}


def _init(task: str, shifts: tuple[int, ...]) -> None:
    import torch

    from semrl.agent.resolve import resolve_policy
    from semrl.bench.items import TASKS
    from semrl.bench.tasknet import TaskNet

    torch.set_num_threads(1)
    _state["task"], _state["shifts"] = task, shifts
    _state["net"] = TaskNet(TASKS[task])
    policy = resolve_policy(task, task=task)
    # The map alone: the shipped config now trades, and the shifts here are the trade's own trials.
    policy.answer = None  # type: ignore[attr-defined]
    _state["policy"] = policy


def _picture(paths: tuple[Path, Path | None]) -> dict[str, Any]:
    from semrl.bench.items import image_item
    from semrl.fidelity.detection import match_frame, pseudo_target
    from semrl.fidelity.segmentation import MASK_EVAL
    from semrl.semantics.yolo import InferenceSettings

    net, policy, masks = _state["net"], _state["policy"], _state["task"] == "segmentation"
    settings = MASK_EVAL if masks else InferenceSettings()
    item = image_item(*paths)
    analysis, _ = net.analyse_all(item)
    target = pseudo_target(net.net.detect([item.source[0]], settings, color="rgb")[0])

    def score(rgb: np.ndarray) -> tuple[Any, Any]:
        pred = net.net.detect([rgb], settings, color="rgb")[0]
        return net._match(item, 0, pred, analysis), match_frame(pred, target, "mask" if masks else "box")

    codings = code_all(item, analysis, policy, _state["shifts"], score)
    return {"name": str(paths[0]), "pixels": item.shape[0] * item.shape[1], "codings": codings}


def code_all(
    item: Any, analysis: Any, policy: Any, shifts: tuple[int, ...], score: Callable[[np.ndarray], tuple[Any, ...]]
) -> dict[tuple[str, int, int], tuple[Any, ...]]:
    """Each base QP's A1 coding and the map at each of ``shifts``: ``(bits, *score(shown))`` by (kind, QP, shift)."""
    from semrl.agent.answer import trial_coder
    from semrl.bench.encoding import encoder_config
    from semrl.codec import ctu_grid
    from semrl.policy import PolicyInput, TrialCoding, offset_block, policy_offsets, scaling_lists

    frame = item.yuv[0]
    codings: dict[tuple[str, int, int], tuple[Any, ...]] = {}
    for q in QPS:
        for kind, block, lists in (("A1", 64, None), ("policy", offset_block(policy), scaling_lists(policy))):
            config = encoder_config(
                item, q, crf=False, video=False, preset="medium", keyint=250, qg_size=block, scaling_lists=lists
            )
            ctu_shape = ctu_grid(config.width, config.height)
            inputs = PolicyInput(
                frame.to_rgb(), q, ctu_shape, analysis.regions[0], analysis.boxes[0], 0, {}, gop=config.layout(),
                cls=analysis.cls[0], conf=analysis.conf[0], picture=frame, coding=TrialCoding(config, item.shape),
            )  # fmt: skip
            code = trial_coder(inputs)
            assert code is not None
            if kind == "A1":
                bits, rgb = code(np.zeros(ctu_shape, np.int32))
                codings[(kind, q, 0)] = (bits, *score(rgb))
                continue
            offsets = policy_offsets(policy, inputs)
            for shift in shifts:
                bits, rgb = code((offsets + shift).astype(np.int32))
                codings[(kind, q, shift)] = (bits, *score(rgb))
    return codings


def main(argv: list[str]) -> None:
    from semrl.bench.items import TASKS
    from semrl.fidelity.labels import dataset_images

    task, shifts = "detection", SHIFTS
    while argv[0].startswith("--"):
        if argv[0] == "--task":
            task = argv[1]
        elif argv[0] == "--shifts":
            shifts = tuple(int(s) for s in argv[1].split(","))
        else:
            raise SystemExit(f"unknown option {argv[0]}: use --task NAME or --shifts -12,-9,12")
        argv = argv[2:]
    start, limit, dst = int(argv[0]), int(argv[1]), Path(argv[2])
    images = dataset_images(TASKS[task].data, "train")[start : start + limit]
    run(_picture, [(im.image, im.label) for im in images], task, shifts, dst, start)


def run(
    picture: Callable[[Any], dict[str, Any]], jobs: list[Any], task: str, shifts: tuple[int, ...], dst: Path,
    first: int = 0,
) -> None:  # fmt: skip
    """``picture`` on each job in two worker processes (set up by ``_init``), the results pickled to ``dst`` at once."""
    results = []
    with mp.get_context("spawn").Pool(2, initializer=_init, initargs=(task, shifts)) as pool:
        for i, r in enumerate(pool.imap(picture, jobs)):
            results.append(r)
            print(first + i, r["name"], flush=True)
    tmp = dst.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(results))
    tmp.replace(dst)


if __name__ == "__main__":
    main(sys.argv[1:])
