"""Gymnasium environments of semrl.

``semrl/SemanticQP-v0``: per-CTU QP offsets for a vision task (:class:`envs.semantic_qp.SemanticQPEnv`)::

    import gymnasium as gym
    import envs  # registers the id

    env = gym.make("semrl/SemanticQP-v0", tables=tables, mode="fast")
"""

from gymnasium.envs.registration import register, registry

ENV_ID = "semrl/SemanticQP-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.semantic_qp:SemanticQPEnv", disable_env_checker=False)

__all__ = ["ENV_ID"]
