"""Constant-QP HEVC coded at a lower resolution and shown at the clip's (a probe of a lever no run had tried).

The task net reads a clip at its long side (at most 640 px) and coarse QPs take detail away anyway:
at low rates a smaller picture may keep more of what the detector needs per bit than a coarser QP
(the rate-resolution trade of adaptive streaming). Each clip of the video benchmark (its default
clips, frames 0-149, LDP, preset medium, one thread, as ``benchmarks/bdrate.py --task video`` codes
A1) is scaled by ``s`` (each 4:2:0 plane by area averaging, to even sizes), coded at constant QP,
and its reconstructions scaled back (bicubic, as a player shows a stream whose MP4 says the
clip's display size) before the detector reads them. Scores as the benchmark's: mAP50-95 (class
mean and ``objects``) against the net's objects on the original frames, person AP against the
real labels of PETS and TUD-Campus.

    python benchmarks/results/video-resolution/probe.py --output benchmarks/results/video-resolution/points.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from semrl.bench.encoding import encoder_config
from semrl.bench.items import Item, TaskSpec, load_items
from semrl.bench.tasknet import PooledScores, TaskNet, label_metric
from semrl.codec import EncodedFrame, Encoder, EncoderConfig, Yuv420
from semrl.fidelity.detection import FrameMatches


def scaled(picture: Yuv420, width: int, height: int, interpolation: int) -> Yuv420:
    """The picture at ``width`` x ``height`` (even), each plane resized alike."""
    y, u, v = (
        np.asarray(cv2.resize(plane, size, interpolation=interpolation), np.uint8)
        for plane, size in ((picture.y, (width, height)), (picture.u, (width // 2, height // 2)),
                            (picture.v, (width // 2, height // 2)))
    )  # fmt: skip
    return Yuv420(y, u, v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,0.75,0.5")
    parser.add_argument("--qps", default="22,27,32,37,42,47,51")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--clips-output", type=Path, help="also each clip's points (a CSV with a clip column)")
    args = parser.parse_args(argv)
    task = TaskSpec("video", data="", weights="yolov8n.pt", metric="mAP50-95", rate_unit="kbit/s")
    items: list[Item] = load_items(task, None, None, frames=args.frames)
    net = TaskNet(task)
    scales = [float(s) for s in args.scales.split(",")]
    qps = [int(q) for q in args.qps.split(",")]
    # per (scale, qp): frames' scores, label scores, bits, seconds
    scores: dict[tuple[float, int], list[FrameMatches]] = {}
    labelled: dict[tuple[float, int], list[FrameMatches]] = {}
    bits: dict[tuple[float, int], int] = {}
    seconds = 0.0
    clip_rows: list[list[object]] = []
    start = time.time()
    for item in items:
        analysis, _ = net.analyse_all(item)
        w, h = item.coded_size
        seconds += len(item.yuv) / (item.fps or 25.0)
        for s in scales:
            ws, hs = max(64, round(w * s / 2) * 2), max(64, round(h * s / 2) * 2)
            small = item.yuv if s == 1 else [scaled(f, ws, hs, cv2.INTER_AREA) for f in item.yuv]
            for qp in qps:
                config = replace(encoder_config(item, qp, crf=False, video=True, preset="medium", keyint=250),
                                 width=ws, height=hs)  # fmt: skip
                coded = sorted(_encode(config, small), key=lambda f: f.pts)
                shown = [f.recon if s == 1 else scaled(f.recon, w, h, cv2.INTER_CUBIC) for f in coded]
                frames = [p.to_rgb()[: item.shape[0], : item.shape[1]] for p in shown]
                found, against_labels = net.score_all(item, frames, analysis)
                key = (s, qp)
                if args.clips_output is not None:
                    clip_rows.append(_row([item.name, s, qp], sum(f.bits for f in coded),
                                          len(item.yuv) / (item.fps or 25.0), found, against_labels))  # fmt: skip
                scores.setdefault(key, []).extend(found)
                if against_labels is not None:
                    labelled.setdefault(key, []).extend(against_labels)
                bits[key] = bits.get(key, 0) + sum(f.bits for f in coded)
            print(f"{item.name} scale {s}: done at {time.time() - start:.0f} s", flush=True)
    header = ["scale", "qp", "kbps", "task", "task50", "objects", "person", "person50"]
    rows = [_row([key[0], key[1]], bits[key], seconds, scores[key], labelled.get(key))
            for key in sorted(scores, key=lambda k: (-k[0], k[1]))]  # fmt: skip
    for path, header_rows in ((args.output, (header, rows)), (args.clips_output, (["clip", *header], clip_rows))):
        if path is not None:
            with path.open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(header_rows[0])
                writer.writerows(header_rows[1])
    print(f"wrote {args.output} in {time.time() - start:.0f} s")
    return 0


def _row(
    key: list[object], bits: int, seconds: float, found: list[FrameMatches], person: list[FrameMatches] | None
) -> list[object]:
    """One point: its key, the rate in kbit/s, and its scores x 100 (person AP NaN without labels)."""
    pooled = PooledScores("video", found)
    task_map, task50 = pooled.metric()
    person_map, person50 = label_metric(person) if person else (float("nan"), float("nan"))
    figures = (task_map, task50, pooled.objects(), person_map, person50)
    return [*key, round(bits / seconds / 1000, 3), *(round(100 * v, 4) for v in figures)]


def _encode(config: EncoderConfig, frames: list[Yuv420]) -> list[EncodedFrame]:
    with Encoder(config) as encoder:
        coded = []
        for frame in frames:
            coded += encoder.encode(frame, None)
        return coded + encoder.flush()


if __name__ == "__main__":
    sys.exit(main())
