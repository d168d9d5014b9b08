"""Semantic maps and pseudo-ground-truth mAP from the real YOLO nets on coco8, coco-seg, bus.jpg."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from shared_assets import require_assets

pytestmark = [pytest.mark.weights, pytest.mark.slow]


def _assets() -> Path:
    return require_assets("models/yolov8n.pt")


@pytest.fixture(scope="module", autouse=True)
def _threads() -> None:
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="module")
def detector():
    _assets()
    from semrl.semantics.extractors import make_extractor

    return make_extractor("detection", "boxes", device="cpu")


def _labelled(dataset: str, n: int):
    from semrl.fidelity.labels import dataset_images, read_yolo_labels
    from semrl.semantics.frames import read_image

    _assets()
    items = dataset_images(dataset)[:n]
    frames = [read_image(i.image) for i in items]
    labels = [
        read_yolo_labels(i.label, f.shape[:2], masks=dataset == "coco-seg") for i, f in zip(items, frames, strict=True)
    ]
    return frames, labels


def test_detection_maps_cover_labelled_objects(detector) -> None:
    from semrl.semantics.maps import box_map

    frames, labels = _labelled("coco8", 4)
    maps = detector.extract(frames)
    shares = []
    for m, lab in zip(maps, labels, strict=True):
        # the detector's margin is 16 px, so compare with the labelled boxes grown by as much
        inside = box_map(m.shape, lab.boxes, np.ones(len(lab)), margin=16) > 0
        shares.append(m.values[inside].sum() / m.values.sum())
    # yolov8n calls part of one coco8 picture (the dog) a suitcase, so one frame may fall short
    assert np.median(shares) > 0.9 and np.mean(shares) > 0.75, f"map mass inside boxes: {shares}"


def test_bus_detection_and_gradient_maps(detector) -> None:
    import ultralytics

    from semrl.semantics.extractors import make_extractor
    from semrl.semantics.frames import read_image

    bus = read_image(Path(ultralytics.__file__).parent / "assets" / "bus.jpg")
    m = detector.extract([bus])[0]
    d = detector.net.detect([bus])[0].above(0.25)
    assert {0, 5} <= set(d.cls.tolist())  # people and the bus
    grid = m.ctu_grid()
    assert grid.shape == (17, 13) and grid.max() > 0.8
    rgb = detector.extract([np.ascontiguousarray(bus[:, :, ::-1])], color="rgb")[0]
    np.testing.assert_array_equal(rgb.values, m.values)
    g = make_extractor("detection", "gradient", device="cpu", config=detector.config)
    gm = g.extract([bus])[0]
    box = m.values > 0
    assert gm.values[box].mean() > 2 * gm.values[~box].mean()


def test_gradcam_of_a_cat_falls_on_the_cat() -> None:
    from semrl.semantics.extractors import make_extractor
    from semrl.semantics.frames import read_image
    from semrl.semantics.maps import box_map
    from semrl.semantics.yolo import InferenceSettings, YoloNet

    root = _assets()
    cat = read_image(root / "datasets/imagenet-cls/train/n02123045/n02123045_tabby.JPEG")
    # The animal's region: yolov8n's cat box (COCO class 15) on the same picture.
    found = YoloNet("yolov8n.pt", device="cpu").detect([cat], InferenceSettings(conf=0.25))[0]
    cats = found.boxes[found.cls == 15]
    assert len(cats) >= 1, "yolov8n finds no cat in the tabby picture"
    region = box_map(cat.shape[:2], cats[:1], np.ones(1)) > 0
    cam = make_extractor("classification", "gradcam", device="cpu").extract([cat])[0]
    share = cam.values[region].sum() / cam.values.sum()
    area = region.mean()
    assert share > 0.7 and share > area + 0.1, f"{share:.2f} of Grad-CAM on a box of area {area:.2f}"


def test_segmentation_maps_agree_with_mask_labels() -> None:
    from semrl.semantics.extractors import make_extractor

    frames, labels = _labelled("coco-seg", 4)
    ext = make_extractor("segmentation", "masks", device="cpu")
    ious = []
    for m, lab in zip(ext.extract(frames), labels, strict=True):
        assert lab.masks is not None
        gt = lab.masks.any(0)
        pred = m.values > 0
        ious.append((gt & pred).sum() / max((gt | pred).sum(), 1))
    assert np.mean(ious) > 0.6, f"IoU of thresholded maps with GT masks: {ious}"


def test_mask_scores_on_the_grid_alone_match_those_with_masks_at_the_frames_resolution() -> None:
    import cv2

    from semrl.errors import InvalidInputError
    from semrl.fidelity.detection import match_frame, pseudo_target
    from semrl.fidelity.labels import dataset_images, read_yolo_labels
    from semrl.fidelity.segmentation import MASK_EVAL, MASK_SCORE
    from semrl.semantics.yolo import YoloNet

    frames, _ = _labelled("coco-seg", 3)
    items = dataset_images("coco-seg")[:3]
    net = YoloNet("yolo11n-seg.pt", device="cpu")
    blurred = [cv2.GaussianBlur(f, (0, 0), 3) for f in frames]
    for item, frame, coded in zip(items, frames, blurred, strict=True):
        (full, own), (grid, own_grid) = (net.detect([coded, frame], s) for s in (MASK_EVAL, MASK_SCORE))
        assert full.masks is not None and grid.masks is None and len(grid) > 0
        np.testing.assert_array_equal(grid.grid_masks, full.grid_masks)
        label = read_yolo_labels(item.label, frame.shape[:2], masks=True, letterbox=full.letterbox)
        for target, target_grid in ((label, label), (pseudo_target(own), pseudo_target(own_grid))):
            matched = match_frame(full, target, "mask")
            np.testing.assert_array_equal(match_frame(grid, target_grid, "mask").tp, matched.tp)
            assert matched.tp.any()  # the blurred picture still finds some objects: the check can fail
    with pytest.raises(InvalidInputError, match="native_masks=False needs coarse_masks"):
        type(MASK_SCORE)(native_masks=False)


def test_pseudo_ground_truth_is_perfect_and_blur_is_not() -> None:
    import cv2

    from semrl.fidelity.detection import pseudo_gt_map
    from semrl.semantics.yolo import YoloNet

    frames, _ = _labelled("coco8", 4)
    net = YoloNet("yolov8n.pt", device="cpu")
    preds = net.detect(frames)
    own = pseudo_gt_map(preds, preds)
    assert own.objects > 0
    assert own.map50_95 == pytest.approx(1.0, abs=1e-9)
    assert own.map50 == pytest.approx(1.0, abs=1e-9)
    blurred = [cv2.GaussianBlur(f, (0, 0), 6) for f in frames]
    worse = pseudo_gt_map(preds, net.detect(blurred))
    print(f"\npseudo-GT mAP50-95: uncompressed {own.map50_95} blurred {worse.map50_95:.4f}")
    assert worse.map50_95 < 0.5


def test_detection_runs_torchvisions_nms_in_a_fresh_process() -> None:
    # Ultralytics falls back to a pure-torch NMS (14x slower) unless torchvision is imported; a
    # fresh process shows whether YoloNet itself makes the choice.
    import subprocess
    import sys

    from semrl.fidelity.labels import dataset_images

    _assets()
    picture = dataset_images("coco8")[0].image
    script = (
        "from semrl.semantics.frames import read_image\n"
        "from semrl.semantics.yolo import YoloNet\n"
        "import sys\n"
        "net = YoloNet('yolov8n.pt', device='cpu')\n"
        "assert 'torchvision' in sys.modules, 'YoloNet left torchvision unimported'\n"
        "import torchvision\n"
        "calls = []\n"
        "kernel = torchvision.ops.nms\n"
        "torchvision.ops.nms = lambda *a: calls.append(1) or kernel(*a)\n"
        f"net.detect([read_image({str(picture)!r})])\n"
        "print(len(calls))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == 1, done.stdout


def test_channels_last_net_matches_the_default_layout() -> None:
    # MEMORY_FORMAT is a speed choice: the detections must stay those of the default layout.
    import torch

    from semrl.semantics.yolo import MEMORY_FORMAT, YoloNet

    frames, _ = _labelled("coco8", 4)
    net = YoloNet("yolov8n.pt", device="cpu")
    x = net.to_tensor([net.letterbox(frames[0], 640)[0]])
    assert x.is_contiguous(memory_format=getattr(torch, MEMORY_FORMAT))
    fast = net.detect(frames)
    net.model = net.model.to(memory_format=torch.contiguous_format)
    net.to_tensor = lambda images: YoloNet.to_tensor(net, images).contiguous()  # type: ignore[method-assign]
    plain = net.detect(frames)
    for a, b in zip(fast, plain, strict=True):
        strong_a, strong_b = a.conf > 0.25, b.conf > 0.25
        assert strong_a.sum() == strong_b.sum() > 0
        np.testing.assert_allclose(a.boxes[strong_a], b.boxes[strong_b], atol=0.05)
        np.testing.assert_allclose(a.conf[strong_a], b.conf[strong_b], atol=1e-3)
        assert (a.cls[strong_a] == b.cls[strong_b]).all()


def test_a_bf16_net_finds_the_fp32_nets_objects_with_float32_outputs() -> None:
    # bf16 is a speed choice of semrl encode's task net: its objects must stay the fp32 net's, to within
    # the rounding of bfloat16 (boxes by about 1 % of their size, confidences by about 0.01).
    from semrl.errors import InvalidInputError
    from semrl.fidelity.detection import box_iou
    from semrl.semantics.yolo import InferenceSettings, YoloNet

    frames, _ = _labelled("coco8", 4)
    exact = YoloNet("yolov8n.pt", device="cpu")
    fast = YoloNet("yolov8n.pt", device="cpu", precision="bf16")
    assert fast.precision == "bf16" and fast.fingerprint == exact.fingerprint + ":bf16"
    settings = InferenceSettings(conf=0.25, multi_label=False)
    matched = 0
    for a, b in zip(exact.detect(frames, settings), fast.detect(frames, settings), strict=True):
        assert b.boxes.dtype == np.float32 and b.conf.dtype == np.float32
        iou = box_iou(a.boxes, b.boxes)
        for i, (conf, cls) in enumerate(zip(a.conf, a.cls, strict=True)):
            if conf < 0.4:  # near the threshold an object may fall on either side of it
                continue
            best = int(np.argmax(iou[i]))
            assert iou[i, best] > 0.95 and b.cls[best] == cls and abs(b.conf[best] - conf) < 0.05
            matched += 1
    assert matched >= 8
    with pytest.raises(InvalidInputError, match="fp32, bf16"):
        YoloNet("yolov8n.pt", device="cpu", precision="fp16")


@pytest.mark.parametrize("weights", ["yolov8n.pt", "yolo11n-seg.pt"])
def test_a_frozen_net_gives_the_eager_nets_outputs_bit_for_bit(weights: str) -> None:
    # semrl encode freezes its task net for the clip's frame size: its coding must stay exactly the eager net's
    from semrl.semantics.yolo import InferenceSettings, YoloNet

    require_assets(f"models/{weights}")
    frames, _ = _labelled("coco8", 4)
    eager = YoloNet(weights, device="cpu")
    frozen = YoloNet(weights, device="cpu")
    settings = InferenceSettings(imgsz=640, batch=1)
    assert frozen.freeze(frames[0].shape[:2], settings.imgsz)
    assert frozen.freeze(frames[0].shape[:2], settings.imgsz)  # once per shape
    assert len(frozen._graphs) == 1
    for frame in frames:  # the first through the graph, frames of other sizes eagerly
        a, b = eager.detect([frame], settings)[0], frozen.detect([frame], settings)[0]
        assert len(a) > 0
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.conf, b.conf) and np.array_equal(a.cls, b.cls)
        if a.masks is not None:
            assert b.masks is not None and np.array_equal(a.masks, b.masks)
    ((shape, graph),) = frozen._graphs.items()
    used: list[tuple[int, ...]] = []
    frozen._graphs[shape] = lambda x: used.append(tuple(x.shape)) or graph(x)
    frozen.detect(frames, settings)
    inputs = [(1, 3, *frozen.letterbox(f, settings.imgsz)[1].input_shape) for f in frames]
    assert used == [s for s in inputs if s == shape] and len(used) < len(inputs)  # the others ran eagerly
    assert not YoloNet(weights, device="cpu", precision="bf16").freeze(frames[0].shape[:2], 640)


@pytest.mark.parametrize("weights", ["yolov8n.pt", "yolo11n-seg.pt"])
def test_ultralytics_own_nms_keeps_torchvisions_boxes_at_semrl_encodes_threshold(
    monkeypatch: pytest.MonkeyPatch, weights: str
) -> None:
    # semrl encode's task net does not import torchvision (compiled_nms=False): its objects must be the same
    import sys

    from semrl.semantics.regions import REGION_CONF
    from semrl.semantics.yolo import InferenceSettings, YoloNet

    require_assets(f"models/{weights}")
    frames, _ = _labelled("coco8", 8)
    net = YoloNet(weights, device="cpu")  # imports torchvision: Ultralytics runs its compiled NMS
    settings = InferenceSettings(conf=REGION_CONF, multi_label=False, batch=1)
    compiled = net.detect(frames, settings)
    monkeypatch.delitem(sys.modules, "torchvision")  # as in a process that never imported it
    own = YoloNet(weights, device="cpu", compiled_nms=False).detect(frames, settings)
    assert "torchvision" not in sys.modules
    assert sum(len(d) for d in compiled) >= 10
    for a, b in zip(compiled, own, strict=True):
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.conf, b.conf) and np.array_equal(a.cls, b.cls)
        if a.masks is not None:
            assert b.masks is not None and np.array_equal(a.masks, b.masks)
