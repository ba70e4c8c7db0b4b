"""Recipes: the contract (`Recipe`, registered through `register_recipes`),
the sampler loop, and the built-in sl, rl, dpo and distill. Configs are chz
classes inheriting `cookbook_cli.run.config.RunConfig`; loops talk only to the
engine protocol in `cookbook_cli.engines.protocol`."""

from cookbook_cli.recipes.contract import Option, Recipe
from cookbook_cli.run.config import EpochConfig, RunConfig
from cookbook_cli.run.options import RunOptions

__all__ = ["EpochConfig", "Option", "Recipe", "RunConfig", "RunOptions"]
