"""Reinforcement learning: environments, rollouts and the learning signal.

- `types`: Env, StepResult, EnvGroupBuilder, RLDataset(+Builder), Transition,
  Trajectory, TrajectoryGroup.
- `problem_env`, `message_env`: helpers for single-turn problems and for
  environments that work in Messages through a renderer.
- completers (token and message) live in `cookbook_cli.completers`.
- `rollouts`: groups of episodes sampled concurrently with asyncio.
- `data_processing`: group-centred advantages and Datums for the RL losses.
- `metrics`: reward/episode metrics, KL between sampler and learner, KL penalty.
- `envs`: looking environments up in the `register_envs` registry.

The training loops live in `cookbook_cli.recipes.rl`. Nothing here imports
torch; `tinker.types` is imported inside the functions that build its values.
"""
