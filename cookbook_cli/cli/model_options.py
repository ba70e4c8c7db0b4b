"""The options that say which model a command uses, shared by `sample`,
`chat`, `eval` and `export` (see `cookbook_cli.sources`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from cookbook_cli.sources import ModelSource

MODEL = typer.Option(None, "--model", "-m", help="A base model: a registered name (cookbook models list), a Hugging Face folder, a .gguf file, a Hub id, or random:<shape>:<tokenizer> on the local engine.")
RUN = typer.Option(None, "--run", help="A run's log directory: its newest checkpoint, or the one --checkpoint names.")
CHECKPOINT = typer.Option(
    None, "--checkpoint", "-c", help="A checkpoint of the run: its name (step-000020), step (20) or path (the run is found from the path)."
)
ENGINE = typer.Option(None, "--engine", "-e", help="Engine for --model (default local); a run uses its own.")
RENDERER = typer.Option(None, "--renderer", "-r", help="Chat format; default: the run's, or the model's recommended one.")


def model_source(
    model: str | None, run: str | None, checkpoint: str | None, engine: str | None, renderer: str | None
) -> ModelSource:
    from cookbook_cli.sources import resolve_source

    return resolve_source(model=model, run=run, checkpoint=checkpoint, engine=engine, renderer=renderer)
