"""What a recipe is, to core: a registered `Recipe` (its chz config class,
inheriting `cookbook_cli.run.config.RunConfig`, and its `train(config,
options)`), and what every recipe's `train` does before its loop.

A plugin registers one with `register_recipes(register)`:

    @hookimpl
    def register_recipes(register):
        register("my_recipe", Recipe(MyConfig, train, summary), "one line on what it trains")

and `cookbook train my_recipe` gets its options from MyConfig's fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from cookbook_cli.run.options import RunOptions

if TYPE_CHECKING:
    from cookbook_cli.run.config import RunConfig
    from cookbook_cli.run.lifecycle import RunSettings

C = TypeVar("C", bound="RunConfig")


@dataclass(frozen=True)
class Option:
    """A command-line option that sets a config word the fields alone do not
    name (e.g. `--teacher` -> `teachers.0.model`). `file_builder`: the value is
    a file for that registered builder (`--prompts F` -> `key=prompt_file`,
    `key.path=F`). Options sharing a `group` exclude each other."""

    flags: tuple[str, ...]
    key: str
    help: str = ""
    file_builder: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Recipe:
    """`config`: the chz config class; `train(config, options) -> result`;
    `summary(config, result) -> lines` printed after a CLI run; `options`:
    extra command-line options (`Option`); `aliases`: more spellings of a
    field's option, e.g. {"loss_fn": ("--loss",)}; `words`: config words that
    may be written without a prefix (`env=...` for `teachers.0.env=...`)."""

    config: type
    train: Callable[[Any, RunOptions], Any]
    summary: Callable[[Any, Any], list[str]] | None = None
    options: tuple[Option, ...] = ()
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    words: Mapping[str, str] = field(default_factory=dict)


def prepare_run(recipe: str, config: C, options: RunOptions | None) -> tuple[C, RunOptions]:
    """The config resolved and checked, and the options, before anything loads:
    an engine that cannot run here (credentials) is refused now."""
    from cookbook_cli.run.config import check_engine_ready

    options = options or RunOptions()
    cfg = config.resolve(recipe)
    if options.service is None:
        assert cfg.engine is not None
        check_engine_ready(cfg.engine)
    return cfg, options


def run_settings(recipe: str, cfg: RunConfig, options: RunOptions, stored: Mapping[str, Any] | None = None) -> RunSettings:
    """The lifecycle's settings of a resolved config (`stored`: config.json, default its JSON)."""
    from cookbook_cli.run.lifecycle import RunSettings

    assert cfg.log_dir is not None and cfg.engine is not None
    return RunSettings(
        recipe, cfg.log_dir, dict(stored) if stored is not None else cfg.to_json(), cfg.engine, cfg.engine_options,
        type(cfg).RESUME_MAY_CHANGE, options,
    )


def stored_values(config_class: type, log_dir: str | None, recipe: str) -> dict[str, Any] | None:
    """The settings a run stored in its config.json, as the base of a resumed
    run's config (None when `log_dir` holds no run yet)."""
    from pathlib import Path

    from cookbook_cli.config import values_from_json
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.run.directory import RunDir
    from cookbook_cli.run.files import CONFIG, read_json

    if log_dir is None:
        raise CookbookError("--if-exists resume needs --log-dir: the run to resume (or: cookbook runs resume DIR)")
    path = Path(log_dir).expanduser()
    if not (path / CONFIG).is_file():
        return None
    stored_recipe = RunDir(path).info().get("recipe")
    if stored_recipe is not None and stored_recipe != recipe:
        raise CookbookError(f"{str(path)!r} holds a `train {stored_recipe}` run; resume it with: cookbook runs resume {path}")
    data = read_json(path / CONFIG)
    if not isinstance(data, dict):
        raise CookbookError(f"{path / CONFIG} is not a config object; restore it or start over with --if-exists overwrite")
    return values_from_json(config_class, data)
