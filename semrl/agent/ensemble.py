"""Several DQN policies as one: their Q-values averaged, exactly, in one network.

A picture policy's DQN regresses each action's expected reward per CTU (discount 0: a contextual
bandit), and nets trained with different seeds differ by several BD-rate points; averaging the
regressions is meant to cut that variance (on detection it did not pay:
``benchmarks/results/detection-ensemble``). The mean of K multilayer perceptrons of the same
shape is itself one perceptron, K times as wide: the first layer stacks the members' first layers,
each hidden layer is block-diagonal (member k's units only see member k's units), and the output
layer takes each member's output weights divided by K. So the ensemble is saved, loaded and run as
an ordinary SB3 ``DQN`` checkpoint, and nothing downstream knows it was K nets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semrl.errors import InvalidInputError


def _linear_layers(policy: Any) -> list[Any]:
    """The linear layers of a DQN policy's Q-network, input first."""
    import torch

    return [layer for layer in policy.q_net.q_net if isinstance(layer, torch.nn.Linear)]


def fuse_dqn(members: Sequence[Any]) -> Any:
    """One DQN model whose Q-values are the mean of the members' (the first member is reused).

    Args:
        members: Loaded SB3 ``DQN`` models of the same observation and action spaces and the same
            hidden layer sizes.

    Returns:
        The first member, its networks replaced by the fused ones (online and target alike).

    Raises:
        InvalidInputError: No members, not DQN, or members of different shapes.
    """
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.dqn.policies import DQNPolicy

    if not members:
        raise InvalidInputError("an ensemble needs at least one member")
    if not all(isinstance(m, DQN) for m in members):
        raise InvalidInputError("only DQN policies can be fused (their Q-values are averaged)")
    layers = [_linear_layers(m.policy) for m in members]
    shapes = {tuple(tuple(layer.weight.shape) for layer in member) for member in layers}
    spaces = {(str(m.observation_space), str(m.action_space)) for m in members}
    if len(shapes) != 1 or len(spaces) != 1:
        raise InvalidInputError(f"ensemble members differ in shape: layers {sorted(shapes)}, spaces {sorted(spaces)}")
    k = len(members)
    base = members[0]
    kwargs = dict(base.policy_kwargs)
    kwargs["net_arch"] = [k * layer.out_features for layer in layers[0][:-1]]
    fused = DQNPolicy(base.observation_space, base.action_space, base.lr_schedule, **kwargs)
    targets = _linear_layers(fused)
    last = len(targets) - 1
    with torch.no_grad():
        for j, target in enumerate(targets):
            target.weight.zero_()
            target.bias.zero_()
            for i, member in enumerate(layers):
                layer = member[j]
                rows = slice(i * layer.out_features, (i + 1) * layer.out_features)
                cols = slice(i * layer.in_features, (i + 1) * layer.in_features)
                if j == 0:
                    target.weight[rows] = layer.weight
                    target.bias[rows] = layer.bias
                elif j < last:
                    target.weight[rows, cols] = layer.weight
                    target.bias[rows] = layer.bias
                else:
                    target.weight[:, cols] = layer.weight / k
                    target.bias += layer.bias / k
    fused.q_net_target.load_state_dict(fused.q_net.state_dict())
    base.policy, base.q_net, base.q_net_target = fused, fused.q_net, fused.q_net_target
    base.policy_kwargs = kwargs
    return base


def fuse_checkpoints(checkpoints: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str]) -> Path:
    """Fuse saved DQN checkpoints (:func:`fuse_dqn`) and save the result atomically at ``output``."""
    from stable_baselines3 import DQN

    from semrl.files import atomic_output

    members = [DQN.load(Path(c), device="cpu") for c in checkpoints]
    model = fuse_dqn(members)
    out = Path(output)
    with atomic_output(out, suffix=".zip") as temporary:
        model.save(temporary)
    return out
