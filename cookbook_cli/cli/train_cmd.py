"""`cookbook train ...`: training recipes. `sl`: supervised fine-tuning."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer

from cookbook_cli.cli.groups import command_group
from typer.core import TyperCommand

app = command_group(
    "Train models: supervised fine-tuning (sl), reinforcement learning (rl), preference learning (dpo) and distillation (distill)."
)


class _ConfigWordsCommand(TyperCommand):
    """Lists the recipe's chz config words after the options in --help, as a
    two-column table (click's definition list: keys never wrap, the rest wraps
    under itself). Computed only when help is shown, so start-up stays fast."""

    config_class_path = ""

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        import importlib

        from cookbook_cli.config import config_fields

        module, _, name = self.config_class_path.partition(":")
        rows = config_fields(getattr(importlib.import_module(module), name))
        with formatter.section("Config words (key=value after the options; nested fields as a.b=value)"):
            formatter.write_dl(
                [(key, f"{tp} = {default}" + (f"  -- {doc}" if doc else "")) for key, tp, default, doc in rows],
                col_max=max(len(key) for key, *_ in rows),
            )


class _SLCommand(_ConfigWordsCommand):
    config_class_path = "cookbook_cli.recipes.sl:SLConfig"


# Options the two recipes share, declared once.
RENDERER = typer.Option(None, "--renderer", "-r", help="Chat format; default: the model's recommended renderer.")
ENGINE = typer.Option(None, "--engine", "-e", help="Training engine: local (default) or tinker (see `cookbook engines list`).")
SAVE_EVERY = typer.Option(None, "--save-every", help="Checkpoint every N steps; 0: only at the end (default 20).")
IF_EXISTS = typer.Option(
    None, "--if-exists", help="When --log-dir holds a run: resume, overwrite or fail (default ask on a terminal, else fail)."
)
DRY_RUN = typer.Option(False, "--dry-run", help="Print the resolved config and exit.")
# ... and the ones sl and dpo share.
MODEL = typer.Option(
    None, "--model", "-m",
    help="Base model. Default on local: a tiny random model with the renderer's tokenizer; on tinker: the renderer's recommended model.",
)
LOG_DIR = typer.Option(None, "--log-dir", "-o", help="Run directory. Default: runs/<recipe>-<dataset>-<model>-<time>.")
EPOCHS = typer.Option(None, "--epochs", help="Passes over the training split (default 1).")
MAX_LENGTH = typer.Option(None, "--max-length", help="Truncate examples (each side of a pair) to this many tokens (default 2048).")
LORA_RANK = typer.Option(None, "--lora-rank", help="LoRA rank; 0 for full fine-tuning (default 32).")
MAX_STEPS = typer.Option(None, "--max-steps", help="Stop after this many steps.")
LOG_TO = typer.Option(
    None, "--log-to", help="Experiment trackers beside metrics.jsonl, e.g. wandb,tensorboard (`cookbook loggers list`); options as logger.<name>.<field>=value."
)


def trackers(log_to: str | None, words: list[str]) -> tuple[list[str], dict[str, dict[str, str]], list[str]]:
    """--log-to names, the logger.<name>.<field>=value words, and the remaining config words."""
    from cookbook_cli.loggers.options import parse_log_to, split_logger_args, validate_logger_names

    rest, options = split_logger_args(words)
    names = parse_log_to(log_to)
    validate_logger_names(names, options)
    return names, options, rest


def epoch_options(
    renderer: str | None, model: str | None, engine: str | None, log_dir: str | None, batch_size: int | None, lr: float | None,
    epochs: int | None, max_length: int | None, lora_rank: int | None, eval_every: int | None, save_every: int | None,
    max_steps: int | None,
) -> dict[str, Any]:
    """The options of `EpochRunConfig` fields (sl, dpo) as config values."""
    return {
        "renderer": renderer, "model": model, "engine": engine, "log_dir": log_dir, "batch_size": batch_size,
        "learning_rate": lr, "epochs": epochs, "max_length": max_length, "lora_rank": lora_rank,
        "eval_every": eval_every, "save_every": save_every, "max_steps": max_steps,
    }


def if_exists_mode(value: str | None) -> str:
    """--if-exists, checked before anything runs (default: ask on a terminal, else fail)."""
    from cookbook_cli.errors import UnknownNameError
    from cookbook_cli.run.lifecycle import IF_EXISTS_VALUES

    mode = value or "ask"
    if mode not in IF_EXISTS_VALUES:
        raise UnknownNameError("--if-exists value", mode, ["resume", "overwrite", "fail"])
    return mode


def option_names(ctx: typer.Context) -> list[str]:
    """The command's option spellings, to tell a misplaced option from an unknown one."""
    return [o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]


def configure_and_train(
    ctx: typer.Context,
    recipe: Any,
    config_class: type,
    options: dict[str, Any],
    mode: str,
    log_to: str | None,
    dry_run: bool,
    rewrite_words: Callable[[list[str]], list[str]] | None = None,
) -> tuple[Any, Any] | None:
    """What every train command does with its options: the config (options,
    then the trailing config words and logger options), and either the resolved
    config printed (--dry-run: None) or the recipe's `train` run on it ((config, result))."""
    from cookbook_cli.config import make_config, print_dry_run

    names, logger_options, words = trackers(log_to, ctx.args)
    config = make_config(config_class, options, rewrite_words(words) if rewrite_words else words, option_names(ctx))
    if dry_run:
        print_dry_run(recipe.config_json(recipe.resolve(config)))
        return None
    return config, recipe.train(config, if_exists=mode, argv=sys.argv, log_to=names, logger_options=logger_options)


def run_footer(result: Any, transcripts: bool | None = None) -> None:
    """The closing lines of every train command: the final weights, the run
    directory, how to see its curves and, for a recipe that keeps transcripts
    (`transcripts` not None: rl, distill), where they are when it wrote them."""
    width = len("curves:     ") if transcripts is None else len("transcripts: ")
    _weights_line(result)
    typer.echo(f"Log directory: {result.log_dir.resolve()}")
    typer.echo(f"  {'curves:'.ljust(width)}cookbook runs show {result.log_dir}")
    if transcripts:
        typer.echo(f"  {'transcripts:'.ljust(width)}{result.log_dir / 'transcripts'}")


def dataset_options(value: str | None, jsonl: str = "conversations", other_files: str | None = "hf") -> dict[str, Any]:
    """--dataset: a registered builder name, or a file: a .jsonl for the `jsonl`
    builder (conversations for sl, comparisons for dpo), any other data file or
    a folder for `other_files` (the hf builder for sl)."""
    from pathlib import Path

    import chz

    from cookbook_cli.errors import CookbookError
    from cookbook_cli.plugins import registry

    if value is None:
        return {}
    if value in registry.dataset_builders:
        return {"dataset": chz.Castable(value)}
    path = Path(value).expanduser()
    suffix = path.suffix.lower()
    if path.is_file() or suffix in (".jsonl", ".json", ".parquet", ".csv") or "/" in value:
        if not path.exists():
            raise CookbookError(f"dataset file {value!r} does not exist")
        builder = jsonl if suffix == ".jsonl" and not path.is_dir() else other_files
        if builder is None:
            raise CookbookError(
                f"--dataset {value!r}: give a .jsonl file, or name a builder and its file (e.g. --dataset hh_rlhf dataset.path={value})"
            )
        return {"dataset": chz.Castable(builder), "dataset.path": str(path)}
    registry.dataset_builders.get(value)  # unknown name: suggestions and the list
    return {}


@app.command(
    "sl",
    cls=_SLCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def sl(
    ctx: typer.Context,
    renderer: str = RENDERER,
    model: str = MODEL,
    engine: str = ENGINE,
    dataset: str = typer.Option(
        None, "--dataset", "-d",
        help="Dataset name (see `cookbook datasets list`) or a conversations .jsonl file. Default: the bundled sample.",
    ),
    log_dir: str = LOG_DIR,
    batch_size: int = typer.Option(None, "--batch-size", "-b", help="Conversations per step (default 8)."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default 1e-2 on random models, else by model: `cookbook models info`)."),
    epochs: int = EPOCHS,
    max_length: int = MAX_LENGTH,
    lora_rank: int = LORA_RANK,
    eval_every: int = typer.Option(None, "--eval-every", help="Test NLL every N steps; 0: only at the end (default 20)."),
    save_every: int = SAVE_EVERY,
    max_steps: int = MAX_STEPS,
    if_exists: str = IF_EXISTS,
    log_to: str = LOG_TO,
    dry_run: bool = DRY_RUN,
) -> None:
    """Supervised fine-tuning on conversations.

    Options first, then any config field as key=value (nested: a.b=value), e.g.
    `cookbook train sl --renderer llama3 lr_schedule=cosine adam.beta2=0.99 dataset.test_size=50`.
    """
    from cookbook_cli.recipes import sl as recipe

    mode = if_exists_mode(if_exists)
    options = epoch_options(renderer, model, engine, log_dir, batch_size, lr, epochs, max_length, lora_rank, eval_every, save_every, max_steps)
    options.update(dataset_options(dataset))
    ran = configure_and_train(ctx, recipe, recipe.SLConfig, options, mode, log_to, dry_run)
    if ran is not None:
        _summary(ran[1])


def _summary(result: Any) -> None:
    def change(a: float | None, b: float | None) -> str:
        if a is None or b is None:
            return "n/a"
        pct = f" ({(b - a) / a * 100:+.0f}%)" if a else ""
        return f"{a:.3f} -> {b:.3f}{pct}"

    done = result.total_steps - result.start_step
    typer.echo(f"Done: {done} steps in {result.elapsed:.0f}s" + (f" (resumed at step {result.resumed_from})" if result.resumed_from else ""))
    typer.echo(f"  train loss  {change(result.first_loss, result.last_loss)}")
    if result.final_test_nll is not None:
        typer.echo(f"  test NLL    {change(result.first_test_nll, result.final_test_nll)}")
    if result.truncated:
        typer.echo(f"  {result.truncated} examples were truncated to max_length")
    run_footer(result)


def _weights_line(result: Any) -> None:
    """The final sampler weights, as a path the user can use from here."""
    from pathlib import Path

    path = (result.final_checkpoint or {}).get("sampler_path")
    if path:
        if "://" not in path and not Path(path).is_absolute():
            path = str((result.log_dir / path).resolve())
        typer.echo(f"  weights     {path}")


# -- rl ------------------------------------------------------------------------------------


class _RLCommand(_ConfigWordsCommand):
    config_class_path = "cookbook_cli.recipes.rl:RLConfig"


@app.command(
    "rl",
    cls=_RLCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def rl(
    ctx: typer.Context,
    env: str = typer.Option(..., "--env", help="Environment (see `cookbook envs list`); its options are env.<field>=value."),
    model: str = typer.Option(
        None, "--model", "-m",
        help="Base model. Default on local: the env's suggested small model, else a tiny random model with the renderer's tokenizer.",
    ),
    engine: str = ENGINE,
    renderer: str = RENDERER,
    log_dir: str = typer.Option(None, "--log-dir", "-o", help="Run directory. Default: runs/rl-<env>-<model>-<time>."),
    max_steps: int = typer.Option(None, "--max-steps", help="Training steps (default: the env's dataset length)."),
    group_size: int = typer.Option(None, "--group-size", help="Episodes per group; rewards are centred within a group (default 4)."),
    groups_per_batch: int = typer.Option(None, "--groups-per-batch", help="Groups per training step (default 8)."),
    max_steps_off_policy: int = typer.Option(
        None, "--max-steps-off-policy",
        help="0 (default): synchronous on-policy. K > 0: asynchronous; sampling runs ahead and no group trained is more than K steps stale.",
    ),
    loss: str = typer.Option(None, "--loss", help="importance_sampling (default), ppo, cispo, dro or a registered loss (`cookbook losses list`)."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (default: the env's suggestion on local, else by model)."),
    lora_rank: int = typer.Option(None, "--lora-rank", help="LoRA rank; 0 for full fine-tuning (default 32, or the env's suggestion)."),
    save_every: int = SAVE_EVERY,
    if_exists: str = IF_EXISTS,
    log_to: str = LOG_TO,
    dry_run: bool = DRY_RUN,
) -> None:
    """Reinforcement learning on an environment, synchronous or asynchronous (off-policy).

    Options first, then any config field as key=value (nested: a.b=value), e.g.
    `cookbook train rl --env arithmetic --max-steps-off-policy 2 env.max_operand=20 temperature=0.8`.
    """
    import chz

    from cookbook_cli.plugins import registry
    from cookbook_cli.recipes import rl as recipe

    mode = if_exists_mode(if_exists)
    registry.envs.get(env)  # unknown names: suggestions and how to list them
    options: dict[str, Any] = {
        "env": chz.Castable(env),
        "model": model,
        "engine": engine,
        "renderer": renderer,
        "log_dir": log_dir,
        "max_steps": max_steps,
        "group_size": group_size,
        "groups_per_batch": groups_per_batch,
        "max_steps_off_policy": max_steps_off_policy,
        "loss_fn": loss,
        "learning_rate": lr,
        "lora_rank": lora_rank,
        "save_every": save_every,
    }
    ran = configure_and_train(ctx, recipe, recipe.RLConfig, options, mode, log_to, dry_run)
    if ran is None:
        return
    config, result = ran
    rewards = result.rewards()
    mode_text = "synchronous" if config.max_steps_off_policy == 0 else f"asynchronous, <= {config.max_steps_off_policy} steps off-policy"
    typer.echo(f"Done: {result.steps_done - result.start_step} steps in {result.elapsed:.0f}s ({mode_text})")
    if rewards:
        typer.echo(f"  mean reward {rewards[0]:.3f} -> {rewards[-1]:.3f}")
    run_footer(result, transcripts=True)


# -- dpo -----------------------------------------------------------------------------------


class _DPOCommand(_ConfigWordsCommand):
    config_class_path = "cookbook_cli.recipes.dpo:DPOConfig"


@app.command(
    "dpo",
    cls=_DPOCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def dpo(
    ctx: typer.Context,
    renderer: str = RENDERER,
    model: str = MODEL,
    engine: str = ENGINE,
    dataset: str = typer.Option(
        None, "--dataset", "-d",
        help="Preference dataset name (see `cookbook datasets list`) or a comparisons .jsonl file. Default: the bundled sample.",
    ),
    log_dir: str = LOG_DIR,
    batch_size: int = typer.Option(None, "--batch-size", "-b", help="Pairs per step (default 8)."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default 1e-5; 1e-2 on random models)."),
    epochs: int = EPOCHS,
    max_length: int = MAX_LENGTH,
    lora_rank: int = LORA_RANK,
    eval_every: int = typer.Option(None, "--eval-every", help="Held-out accuracy and margin every N steps; 0: only at the end (default 20)."),
    save_every: int = SAVE_EVERY,
    max_steps: int = MAX_STEPS,
    beta: float = typer.Option(None, "--beta", help="DPO temperature beta (default 0.1)."),
    reference: str = typer.Option(None, "--reference", help="Reference model or checkpoint (default: the starting weights, frozen)."),
    init_from: str = typer.Option(None, "--init-from", help="Start from this checkpoint: a run directory (e.g. of train sl) or a state path."),
    if_exists: str = IF_EXISTS,
    log_to: str = LOG_TO,
    dry_run: bool = DRY_RUN,
) -> None:
    """Preference learning (DPO) on comparisons of two completions of a prompt.

    Options first, then any config field as key=value (nested: a.b=value), e.g.
    `cookbook train dpo --beta 0.2 dataset.test_size=30 adam.beta2=0.99`.
    """
    from cookbook_cli.recipes import dpo as recipe

    mode = if_exists_mode(if_exists)
    options = epoch_options(renderer, model, engine, log_dir, batch_size, lr, epochs, max_length, lora_rank, eval_every, save_every, max_steps)
    options.update(beta=beta, reference=reference, init_from=init_from, **dataset_options(dataset, jsonl="comparisons", other_files=None))
    ran = configure_and_train(ctx, recipe, recipe.DPOConfig, options, mode, log_to, dry_run)
    if ran is None:
        return
    result = ran[1]
    done = result.total_steps - result.start_step
    typer.echo(f"Done: {done} steps in {result.elapsed:.0f}s" + (f" (resumed at step {result.start_step})" if result.start_step else ""))
    first, final = result.first_eval, result.final_eval
    if final:
        typer.echo(f"  test accuracy {first.get('test/accuracy', float('nan')):.3f} -> {final['test/accuracy']:.3f}")
        typer.echo(f"  test margin   {first.get('test/margin', float('nan')):.4g} -> {final['test/margin']:.4g}")
    run_footer(result)


# -- distill -------------------------------------------------------------------------------


class _DistillCommand(_ConfigWordsCommand):
    config_class_path = "cookbook_cli.recipes.distill:DistillConfig"


#: Config words of the first teacher that may be written without `teachers.0.`.
_FIRST_TEACHER_WORDS = ("env", "prompts", "split", "weight")


def _first_teacher_words(words: list[str]) -> list[str]:
    out = []
    for w in words:
        key = w.partition("=")[0]
        out.append(f"teachers.0.{w}" if key.split(".", 1)[0] in _FIRST_TEACHER_WORDS else w)
    return out


@app.command(
    "distill",
    cls=_DistillCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def distill(
    ctx: typer.Context,
    teacher: str = typer.Option(
        ..., "--teacher", "-t",
        help="The teacher: a model (Hub id, folder, random:...), a runs/... directory of a finished run (e.g. a train sl run), or a tinker:// path.",
    ),
    teacher_renderer: str = typer.Option(
        None, "--teacher-renderer", help="The teacher's chat format when it differs from the student's: completions are re-rendered for it."
    ),
    prompts: str = typer.Option(None, "--prompts", "-p", help="A JSONL of conversations ending in a user turn; `sample`: the prompts shipped with cookbook."),
    dataset: str = typer.Option(
        None, "--dataset", "-d",
        help="A supervised dataset (name or .jsonl): on-policy, its conversations without their last assistant turn are the prompts; "
        "off-policy, its examples are trained. Default: the bundled sample.",
    ),
    env: str = typer.Option(None, "--env", help="An RL environment to take prompts from (see `cookbook envs list`); options as env.<field>=value."),
    mode: str = typer.Option(None, "--mode", help="on_policy (default: the student samples, the teacher grades each token) or off_policy (top-K soft targets)."),
    model: str = typer.Option(
        None, "--model", "-m", help="The student's base model. Default: a fresh copy of a teacher run's base model, else as in train sl."
    ),
    engine: str = ENGINE,
    renderer: str = RENDERER,
    log_dir: str = typer.Option(None, "--log-dir", "-o", help="Run directory. Default: runs/distill-<teacher>-<model>-<time>."),
    max_steps: int = typer.Option(None, "--max-steps", help="Training steps (default: one pass over the prompts or data)."),
    group_size: int = typer.Option(None, "--group-size", help="On-policy: completions per prompt (default 4)."),
    groups_per_batch: int = typer.Option(None, "--groups-per-batch", help="On-policy: prompts per step (default 8)."),
    max_steps_off_policy: int = typer.Option(
        None, "--max-steps-off-policy", help="On-policy: 0 (default) synchronous; K > 0 asynchronous, no group trained more than K steps stale."
    ),
    kl_coef: float = typer.Option(None, "--kl-coef", help="kappa in A_t = -kappa (logp_student - logp_teacher) (default 1)."),
    topk: int = typer.Option(None, "--topk", help="Off-policy: the teacher's K most likely tokens per position (default 20)."),
    batch_size: int = typer.Option(None, "--batch-size", "-b", help="Off-policy: examples per step (default 8)."),
    loss: str = typer.Option(None, "--loss", help="On-policy loss: importance_sampling (default), ppo, cispo, dro or a registered loss."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (default 1e-2 on random models, else by model: `cookbook models info`)."),
    lora_rank: int = typer.Option(None, "--lora-rank", help="LoRA rank; 0 for full fine-tuning (default 32)."),
    save_every: int = SAVE_EVERY,
    if_exists: str = IF_EXISTS,
    log_to: str = LOG_TO,
    dry_run: bool = DRY_RUN,
) -> None:
    """Distil a teacher into a student: on-policy (reverse KL on the student's samples, sync or async) or off-policy (top-K soft targets).

    Options first, then any config field as key=value (nested: a.b=value; the first teacher's env.*, prompts.*,
    split and weight need no teachers.0. prefix; more teachers as teachers.1.model=... teachers.1.prompts.path=... teachers.1.weight=...), e.g.
    `cookbook train distill --teacher runs/my-sft --prompts prompts.jsonl --max-steps-off-policy 1 kl_discount=0.9`.
    """
    import chz

    from cookbook_cli.errors import CookbookError
    from cookbook_cli.plugins import registry
    from cookbook_cli.recipes import distill as recipe

    mode_value = if_exists_mode(if_exists)
    given = [name for name, value in (("--prompts", prompts), ("--dataset", dataset), ("--env", env)) if value is not None]
    if len(given) > 1:
        raise CookbookError(f"{' and '.join(given)} both name the prompts; give one of --prompts, --dataset and --env")
    first: dict[str, Any] = {"teachers.0.model": teacher, "teachers.0.renderer": teacher_renderer}
    if prompts is not None:
        first.update({"teachers.0.prompts": chz.Castable("prompt_file"), "teachers.0.prompts.path": prompts})
    for key, value in dataset_options(dataset).items():
        first[f"teachers.0.prompts{key[len('dataset'):]}"] = value
    if env is not None:
        registry.envs.get(env)  # unknown names: suggestions and how to list them
        first["teachers.0.env"] = chz.Castable(env)
    options: dict[str, Any] = {
        **first,
        "mode": mode,
        "model": model,
        "engine": engine,
        "renderer": renderer,
        "log_dir": log_dir,
        "max_steps": max_steps,
        "group_size": group_size,
        "groups_per_batch": groups_per_batch,
        "max_steps_off_policy": max_steps_off_policy,
        "kl_coef": kl_coef,
        "topk": topk,
        "batch_size": batch_size,
        "loss_fn": loss,
        "learning_rate": lr,
        "lora_rank": lora_rank,
        "save_every": save_every,
    }
    ran = configure_and_train(
        ctx, recipe, recipe.DistillConfig, options, mode_value, log_to, dry_run, rewrite_words=_first_teacher_words
    )
    if ran is None:
        return
    config, result = ran
    kl = result.series("teacher_kl")
    how = "off-policy" if result.mode == "off_policy" else (
        "on-policy, synchronous" if config.max_steps_off_policy == 0 else f"on-policy, asynchronous, <= {config.max_steps_off_policy} steps off-policy"
    )
    typer.echo(f"Done: {result.steps_done - result.start_step} steps in {result.elapsed:.0f}s ({how})")
    if kl:
        typer.echo(f"  teacher KL  {kl[0]:.3f} -> {kl[-1]:.3f}" + (f" ({(kl[-1] - kl[0]) / kl[0] * 100:+.0f}%)" if kl[0] else ""))
    run_footer(result, transcripts=result.mode == "on_policy")
