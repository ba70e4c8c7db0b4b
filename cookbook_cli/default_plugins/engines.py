"""Core's engines and losses, registered through the same hooks as any plugin.

An engine is registered as `factory(**options) -> ServiceClient`, with extras
that tell recipes what they need to know without naming the engine:

- `status()`: says, without importing anything heavy, whether it can run here;
- `checkpoints_in_run_dir`: the factory takes `checkpoint_dir` and keeps a run's
  checkpoints inside its log directory;
- `default_model(renderer)`: the model a recipe uses when none is given;
- `model_spec(model)`: for names only this engine understands (the local
  engine's `random:<shape>:<tokenizer>`), a `ModelSpec` (tokenizer, label for
  run names, trained from scratch); None for any other name;
- `small_models`: runs the small models an env suggests for offline runs
  (`RLDatasetBuilder.local_defaults`);
- `hf_weights(sampler_path)`: the checkpoint's files and base model for
  `cookbook export` (an `engines.weights.HFWeights`).

Built-in losses carry `builtin=True`: the engine computes them from a
name in `forward_backward`; every other registered loss is a function run
through `forward_backward_custom`.
"""

from __future__ import annotations

from cookbook_cli.plugins.spec import Register, hookimpl


@hookimpl(specname="register_engines")
def register_builtin_engines(register: Register) -> None:
    from cookbook_cli.engines.builtin import (
        create_local,
        create_tinker,
        local_default_model,
        local_hf_weights,
        local_model_spec,
        local_status,
        tinker_status,
    )

    register(
        "local",
        create_local,
        "PyTorch + transformers (+ peft for LoRA) on this machine: CUDA if present, else CPU; "
        "real models from a folder or the HF cache, or random:<shape>:<tokenizer>.",
        status=local_status,
        checkpoints_in_run_dir=True,
        default_model=local_default_model,
        model_spec=local_model_spec,
        small_models=True,
        hf_weights=local_hf_weights,
    )
    register(
        "tinker",
        create_tinker,
        "The Tinker training service through the tinker SDK (remote, LoRA on large models); needs TINKER_API_KEY.",
        status=tinker_status,
    )


@hookimpl(specname="register_loss_functions")
def register_builtin_losses(register: Register) -> None:
    from cookbook_cli.engines.losses import BUILTIN_LOSSES

    for name, loss in BUILTIN_LOSSES.items():
        register(name, loss, loss.description, builtin=True)
