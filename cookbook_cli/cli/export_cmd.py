"""`cookbook export`: a checkpoint as a Hugging Face model folder or a PEFT adapter."""

from __future__ import annotations

from pathlib import Path

import typer

from cookbook_cli.cli.model_options import CHECKPOINT, RENDERER


def export(
    target: str = typer.Argument(..., help="A run's log directory (its newest checkpoint) or a checkpoint folder of a run."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to create (never overwritten)."),
    merge: bool = typer.Option(False, "--merge", help="LoRA: fold the adapter into the base weights and write a full model folder."),
    checkpoint: str = CHECKPOINT,
    renderer: str = RENDERER,
    chat_template: Path = typer.Option(
        None, "--chat-template", help="Jinja chat template to ship (checked against the renderer). Default: the tokenizer's own, if it matches."
    ),
    max_shard_size: str = typer.Option("5GB", "--max-shard-size", help="Largest safetensors shard of a model folder, e.g. 2GB or 500MB."),
    model: str = typer.Option(None, "--model", "-m", help="The base model you expect the checkpoint to be trained from (checked)."),
) -> None:
    """Export a checkpoint for transformers, peft and vLLM.

    LoRA: a PEFT adapter folder by default; with --merge, a full model folder
    with W += (alpha/r)·B·A folded in (float32, cast back to the base dtype).
    Full fine-tuning: the model folder. Each comes with the tokenizer, the
    renderer's chat template when it reproduces the renderer's tokens, a
    README.md and export.json."""
    from cookbook_cli.export import export_checkpoint

    result = export_checkpoint(target, out, merge, checkpoint, renderer, chat_template, max_shard_size, model)
    kinds = {"merged": "a merged model folder", "peft": "a PEFT adapter folder", "full": "a model folder"}
    typer.echo(f"Wrote {kinds[result.kind]} to {result.out}")
    for note in result.notes:
        typer.echo(f"  {note}")
