"""What every training run shares, picture and video policies alike.

The checkpoint's name, its atomic save, the provenance its ``ckpt.json`` records and the progress
bar over training steps. :mod:`semrl.agent.train` and :mod:`semrl.agent.video` both build on these,
so neither imports the other's internals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from envs.codecs import Codec, X265ClipCodec, X265Codec
from semrl.agent.config import TrainConfig
from semrl.files import atomic_output
from semrl.semantics.extractors import SemanticExtractor

CHECKPOINT_NAME = "ckpt.zip"
"""The trained model's file in a run's folder; its config ``ckpt.json`` sits beside it."""


def save_model(model: Any, path: Path) -> None:
    """Save a Stable-Baselines3 model atomically: a crash leaves the previous file or none.

    Args:
        model: The model.
        path: Its file (``.zip``).
    """
    with atomic_output(path, suffix=".zip") as temporary:  # SB3 adds ".zip" to a path without it
        model.save(temporary)


def run_provenance(config: TrainConfig, model: Any, net: SemanticExtractor | Any, codec: Codec | Any) -> dict[str, Any]:
    """What a trained policy's ``ckpt.json`` records about its run, picture and video policies alike.

    Args:
        config: The training request.
        model: The trained Stable-Baselines3 model.
        net: The task-net component the policy observed (a semantic extractor or a detector).
        codec: The codec its rewards were measured with.

    Returns:
        :class:`PolicyConfig` fields: algorithm, timesteps, train, x265 version and patch hash,
        preset, weights and their sha256 (a fake's fingerprint), both fingerprints and versions.
    """
    import gymnasium
    import stable_baselines3
    import torch

    import semrl

    weights, sha = _weights_of(net)
    if isinstance(codec, (X265Codec, X265ClipCodec)):
        from semrl.codec import load_library

        build = load_library().build
        x265_version, patch_hash = build.version, build.patch_hash
    else:
        x265_version, patch_hash = "none (fake)", str(codec.fingerprint)
    return {
        "algorithm": config.algorithm, "timesteps": int(model.num_timesteps), "train": json.loads(config.to_json()),
        "x265_version": x265_version, "x265_patch_hash": patch_hash, "preset": config.preset,
        "weights": weights, "weights_sha256": sha, "extractor_fingerprint": net.fingerprint,
        "codec_fingerprint": codec.fingerprint,
        "versions": {"semrl": semrl.__version__, "stable_baselines3": stable_baselines3.__version__,
                     "torch": torch.__version__, "gymnasium": gymnasium.__version__},
    }  # fmt: skip


def _weights_of(component: SemanticExtractor | Any) -> tuple[str, str]:
    """Name and sha256 of the weights of a task-net component, or its fingerprint for a fake."""
    net = getattr(component, "net", None)
    path = getattr(net, "weights_path", None)
    sha = getattr(net, "weights_sha256", None)
    if path is not None and isinstance(sha, str):
        return Path(path).name, sha
    return "none (fake)", str(component.fingerprint)


class ProgressCallback:
    """A tqdm progress bar over training steps (SB3's own needs ``rich``, which semrl does not)."""

    def __new__(cls, total: int, done: int = 0, enabled: bool = True) -> Any:  # noqa: D102
        from stable_baselines3.common.callbacks import BaseCallback
        from tqdm import tqdm

        class _Bar(BaseCallback):
            def _on_training_start(self) -> None:
                self.bar = tqdm(total=total, initial=done, desc="training", unit="step", disable=not enabled)

            def _on_step(self) -> bool:
                self.bar.update(self.training_env.num_envs)
                return True

            def _on_training_end(self) -> None:
                self.bar.close()

        return _Bar()
