"""Gymnasium environments of semrl.

``semrl/SemanticQP-v0``: per-CTU QP offsets for a vision task (:class:`envs.semantic_qp.SemanticQPEnv`)::

    import gymnasium as gym
    import envs  # registers the id

    env = gym.make("semrl/SemanticQP-v0", tables=tables, mode="fast")

``semrl/VideoQP-v0``: each frame's QP and its objects' boost, frame by frame on x265 low-delay P
(:class:`envs.video.VideoQPEnv`)::

    env = gym.make("semrl/VideoQP-v0", segments=segments, codec=codec, detector=detector)
"""

from gymnasium.envs.registration import register, registry

ENV_ID = "semrl/SemanticQP-v0"
VIDEO_ENV_ID = "semrl/VideoQP-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.semantic_qp:SemanticQPEnv", disable_env_checker=False)

if VIDEO_ENV_ID not in registry:
    register(id=VIDEO_ENV_ID, entry_point="envs.video:VideoQPEnv", disable_env_checker=False)

__all__ = ["ENV_ID", "VIDEO_ENV_ID"]
