"""Hook specifications. Every hook but `register_commands` receives a `register`
callback; core owns naming, de-duplication and error messages.

The callback's signature is the same for every hook:
`register(name: str, obj: object, description: str = "", **extra)`.
Extra keywords are kept on the registry entry (`Entry.extra`); the ones core
reads are listed on each hook below.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "cookbook"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]


@hookspec
def register_renderers(register: Register) -> None:
    """Register chat formats: `register(name, factory, description)` where
    `factory(tokenizer) -> Renderer`.

    Extras core reads: none."""


@hookspec
def register_models(register: Register) -> None:
    """Register model families: `register(name, ModelFamily(...), description)`.

    Extras core reads: none; it reads the `ModelFamily` fields instead:
    `renderer` (recommended), `patterns` (fnmatch over model names),
    `tokenizer` (source; None: the model name), `models` (listed by `models
    list`), `other_renderers`, `chat`, `context_length`, `base_renderer` and
    `base_patterns` (the family's base models), `lr_exponent` and
    `hidden_sizes` (the learning-rate rule, see `learning_rates`), `offline`
    (`OfflineModel`s: names that resolve with no network, `locate()`,
    `install` hint, `hub_id`)."""


@hookspec
def register_envs(register: Register) -> None:
    """Register RL dataset builders: `register(name, builder_factory, description)`,
    where the builder is a chz `RLDatasetBuilder` subclass.

    Extras core reads: none; from the builder it reads `default_max_tokens`
    (the sampling budget when the run sets no `max_tokens`) and
    `local_defaults()` (model, renderer, learning_rate, lora_rank for engines
    with `small_models`)."""


@hookspec
def register_dataset_builders(register: Register) -> None:
    """Register dataset builders: `register(name, builder_factory, description, kind=...)`.

    Extras core reads:
    - `kind`: "supervised" (the default; `train sl`), "preference" (`train
      dpo`) or "prompt" (`train distill`): a recipe accepts only its kinds, and
      `cookbook datasets list` shows it."""


@hookspec
def register_evaluators(register: Register) -> None:
    """Register evaluators run by `cookbook eval` and by recipes every
    `eval_every` steps: `register(name, EvaluatorClass, description)`, where
    `EvaluatorClass` is a chz subclass of `cookbook_cli.evaluation.Evaluator`
    whose fields are its options (`cookbook eval NAME key=value`).

    Extras core reads: none."""


@hookspec
def register_loss_functions(register: Register) -> None:
    """Register losses over per-token logprobs: `register(name, fn, description)`,
    where `fn(data, logprobs_list) -> (loss, metrics)` runs through
    `forward_backward_custom`.

    Extras core reads:
    - `builtin`: True for the engines' own losses (computed by name in
      `forward_backward`); core marks its own, a plugin leaves it out;
    - `kind`: "preference" (a `cookbook_cli.preference.losses.PreferenceLoss`
      over (chosen, rejected) pairs: a `train dpo --loss-type` choice) or
      "preference-unpaired" (over desirable/undesirable rows: `train kto
      --loss-type`); left out, a loss over per-token logprobs."""


@hookspec
def register_engines(register: Register) -> None:
    """Register training/sampling engines: `register(name, factory, description, **extras)`,
    where `factory(**options) -> ServiceClient`.

    Extras core reads (all optional), so that no recipe names an engine:
    - `status() -> str`: cheaply, whether the engine can run here ("ready" or
      what is missing), shown by `cookbook engines list`;
    - `checkpoints_in_run_dir`: True when the factory takes `checkpoint_dir`
      and keeps a run's checkpoints inside its log directory;
    - `default_model(renderer) -> str`: the model a recipe uses when none is given;
    - `model_spec(model) -> ModelSpec | None`: for names only this engine
      understands (tokenizer, label for run names, trained from scratch);
    - `small_models`: True when the engine runs the small models an env
      suggests (`RLDatasetBuilder.local_defaults`);
    - `hf_weights(sampler_path) -> HFWeights`: a checkpoint's files and base
      model, for `cookbook export`."""


@hookspec
def register_tools(register: Register) -> None:
    """Register tools an agent may call: `register(name, tool, description)`,
    where `tool` is a `cookbook_cli.tools.Tool` (a name, a description, the JSON
    schema of its arguments, a sync or async `fn` and a `timeout_s`; the
    `cookbook_cli.tools.tool` decorator derives the schema from a typed
    function). The registered name and description win over the Tool's own.
    `cookbook tools list` shows them; tool-use envs look them up by name.

    Extras core reads: none."""


@hookspec
def register_loggers(register: Register) -> None:
    """Register experiment trackers: `register(name, factory, description, **extras)`,
    where `factory(ctx: LoggerContext) -> Logger` (see `cookbook_cli.loggers`).

    Extras core reads:
    - `fields`: {field: help} of the `logger.<name>.<field>=value` options it
      accepts (others are refused);
    - `check_options(options)`: validates those options before the run opens;
    - `requires`: the modules it needs, checked (without importing) by
      `cookbook loggers list` and before a run opens;
    - `extra`: the pip extra that installs them, for the install hint."""


@hookspec
def register_recipes(register: Register) -> None:
    """Register training methods: `register(name, Recipe(config_class, train,
    summary, options=..., aliases=..., words=...), description)` with
    `cookbook_cli.recipes.Recipe`: `config_class` a chz class inheriting
    `cookbook_cli.run.config.RunConfig`, `train(config, RunOptions) -> result`.
    `cookbook train NAME` and its options are generated from the config's fields.

    Extras core reads: `main_metrics`, the metrics `cookbook runs list` shows
    for the recipe's runs, each a metrics.jsonl key or a (key, label) pair."""


@hookspec
def register_commands(app: Any) -> None:
    """Add sub-commands to the typer `app`."""
