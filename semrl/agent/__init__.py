"""Training and running RL policies that choose per-CTU QPs (Stable-Baselines3 on ``envs``).

``semrl.agent.train`` trains and writes ``ckpt.zip`` with its config ``ckpt.json``;
``semrl.agent.checkpoint.load_checkpoint_policy`` loads one as a benchmark/encode policy.
"""
