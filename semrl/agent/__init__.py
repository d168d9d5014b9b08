"""Training and running RL policies that choose per-CTU QPs (Stable-Baselines3 on ``envs``).

``semrl.agent.train`` trains and writes ``ckpt.zip`` with its config ``ckpt.json``;
``semrl.agent.checkpoint.load_checkpoint_policy`` loads one as a :class:`semrl.policy.Policy`;
:func:`resolve_policy` turns any policy spec (a task name, ``uniform``, ``roi``, a checkpoint,
``module:function``) into a policy.
"""

from semrl.agent.resolve import CHECKPOINT_LOADERS, resolve_named_policy, resolve_policy

__all__ = ["CHECKPOINT_LOADERS", "resolve_named_policy", "resolve_policy"]
