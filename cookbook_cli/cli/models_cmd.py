"""`cookbook models ...`: model families and their recommended renderers."""

from __future__ import annotations

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Model families: recommended renderer and tokenizer.")


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List registered model families."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.plugins import registry

    rows = [
        {
            "family": name,
            "plugin": e.plugin,
            "renderer": e.obj.renderer,
            "models": list(e.obj.models),
            "description": e.description,
        }
        for name, e in registry.models.entries().items()
    ]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Model families",
        ["family", "renderer", "plugin", "models"],
        [[r["family"], r["renderer"], r["plugin"], "\n".join(r["models"])] for r in rows],
    )


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else str(n)


@app.command("info")
def info(
    name: str = typer.Argument(
        ..., help="A registered model name (e.g. smollm2-135m-instruct), a Hub id, a model folder, a .gguf file, or a family."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Architecture, size, vocabulary, context, chat template, renderer (and why) and default learning rate of a model.

    Read from the model's files (config.json, tokenizer_config.json, a GGUF's
    metadata) without loading weights. A name that no family lists and that
    is no model here (a typo, or a new fine-tune) but that matches a family's
    name patterns is reported as not a known model, with the closest known
    one and the family's defaults. Exit status 0 for both; 1 for a name no
    family matches that is no local model either."""
    from cookbook_cli.cli.output import print_json
    from cookbook_cli.learning_rates import ON_POLICY_FACTOR
    from cookbook_cli.models.describe import describe_model

    report = describe_model(name)
    if as_json:
        print_json(report.to_json())
        return
    mi, facts = report.info, report.facts
    indent = ""
    if mi is None or mi.known:
        typer.echo(f"model:      {mi.name if mi else name}")
        typer.echo(f"source:     {report.input.origin}" + (f" ({report.input.folder})" if report.input.folder else ""))
        typer.echo(f"family:     {f'{mi.family} (plugin {mi.plugin})' if mi else 'none matches'}")
    else:
        closest = f"closest: {mi.closest}" if mi.closest else "no known model is close"
        typer.echo(f"{mi.name}: not a known model ({closest}; `cookbook models list` shows the known ones).")
        typer.echo(f"Its name matches family {mi.family} (plugin {mi.plugin}); the family defaults would be:")
        indent = "  "
    context = facts.context_length or (mi.context_length if mi else None)
    for label, value in (
        ("architecture", facts.architecture),
        ("parameters", _count(facts.parameters) if facts.parameters else None),
        ("vocabulary", facts.vocabulary),
        ("context", f"{context} tokens" if context else None),
        ("chat template", None if facts.chat_template is None else ("yes" if facts.chat_template else "no")),
    ):
        if value is not None:
            typer.echo(f"{indent}{(label + ':').ljust(11)} {value}")
    if report.renderer is None:
        typer.echo(f"{indent}renderer:   none: {report.renderer_reason}")
    else:
        also = [r for r in (mi.other_renderers if mi else ()) if r != report.renderer]
        typer.echo(f"{indent}renderer:   {report.renderer} ({report.renderer_reason})" + (f" (also: {', '.join(also)})" if also else ""))
    if mi is not None:
        typer.echo(f"{indent}tokenizer:  {mi.tokenizer}")
        typer.echo(f"{indent}kind:       {'chat' if mi.chat else 'base'}")
    lr = report.learning_rate
    typer.echo(f"{indent}learning rate: {lr.lora:.3g} LoRA, {lr.full:.3g} full fine-tuning (train sl, off-policy distill)")
    typer.echo(
        f"{indent}               {lr.for_rank(1, True):.3g} LoRA, {lr.for_rank(0, True):.3g} full fine-tuning "
        f"(train rl, on-policy distill: x{ON_POLICY_FACTOR:g})"
    )
    typer.echo(f"{indent}  rule:     {lr.rule}")
