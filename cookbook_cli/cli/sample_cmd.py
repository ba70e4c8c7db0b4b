"""`cookbook sample`: a model's answers to a file of conversations."""

from __future__ import annotations

from pathlib import Path

import typer

from cookbook_cli.cli.model_options import CHECKPOINT, ENGINE, MODEL, RENDERER, RUN


def sample(
    prompts: Path = typer.Option(
        ..., "--prompts", "-p",
        help="JSONL file of conversations to answer ({\"messages\": [...]} per line); `sample`: the prompts shipped with cookbook.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file to write: each conversation with the sampled reply appended (resumable)."),
    model: str = MODEL,
    run: str = RUN,
    checkpoint: str = CHECKPOINT,
    engine: str = ENGINE,
    renderer: str = RENDERER,
    num_samples: int = typer.Option(1, "-n", "--num-samples", help="Samples per prompt."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Sampling temperature (0: greedy)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling: keep the smallest set of tokens with this much probability."),
    top_k: int = typer.Option(-1, "--top-k", help="Keep the k most likely tokens (-1: all)."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Most tokens per reply."),
    seed: int = typer.Option(None, "--seed", help="Seed: the same command writes the same samples."),
    replace_final: bool = typer.Option(
        False, "--replace-final", help="For conversations that end with an assistant message: drop it and sample a new one."
    ),
) -> None:
    """Answer each conversation of a file with a model or a run's checkpoint.

    Writes each conversation with the sampled assistant message appended (a
    conversation file `train sl` reads), with a `sample` object giving the
    prompt, the termination (stop, eos, length, malformed) and the logprob.
    Re-running with the same --out samples only what is missing."""
    from cookbook_cli.cli.model_options import model_source
    from cookbook_cli.completers import SamplingSettings
    from cookbook_cli.sampling import sample_file

    source = model_source(model, run, checkpoint, engine, renderer)
    settings = SamplingSettings(max_tokens, temperature, top_p, top_k, seed)
    summary = sample_file(prompts, out, source, settings, num_samples, replace_final=replace_final)
    if summary.written == 0:
        typer.echo(f"Nothing to do: {summary.out} already holds {num_samples} sample(s) of each of the {summary.prompts} prompts")
        return
    ended = ", ".join(f"{n} {t}" for t, n in sorted(summary.terminations.items()))
    resumed = f" ({summary.already_written} prompts were already done)" if summary.already_written else ""
    typer.echo(f"Wrote {summary.written} samples to {summary.out}{resumed}: {ended}")
    typer.echo(f"  from {source.describe()}")
    typer.echo(f"  train on them: cookbook train sl --dataset {summary.out}")
