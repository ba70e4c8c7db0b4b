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


@app.command("info")
def info(
    name: str = typer.Argument(..., help="A model name (e.g. meta-llama/Llama-3.2-1B-Instruct), a model folder, or a family."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Family, recommended renderer, tokenizer source and default learning rate of a model.

    A name that no family lists and that is no model folder here (a typo, or a
    new fine-tune) but that matches a family's name patterns is reported as
    not a known model, with the closest known one and the family's defaults.
    Exit status 0 for both; 1 for a name no family matches."""
    from dataclasses import asdict

    from cookbook_cli.cli.output import print_json
    from cookbook_cli.learning_rates import learning_rate_default
    from cookbook_cli.models import model_info

    mi = model_info(name)
    lr = learning_rate_default(mi.name)
    if as_json:
        print_json({**asdict(mi), "lora_learning_rate": lr.lora, "full_learning_rate": lr.full, "learning_rate_rule": lr.rule})
        return
    if mi.known:
        typer.echo(f"model:      {mi.name}")
        typer.echo(f"family:     {mi.family} (plugin {mi.plugin})")
        indent = ""
    else:
        closest = f"closest: {mi.closest}" if mi.closest else "no known model is close"
        typer.echo(f"{mi.name}: not a known model ({closest}; `cookbook models list` shows the known ones).")
        typer.echo(f"Its name matches family {mi.family} (plugin {mi.plugin}); the family defaults would be:")
        indent = "  "
    typer.echo(f"{indent}renderer:   {mi.renderer}" + (f" (also: {', '.join(mi.other_renderers)})" if mi.other_renderers else ""))
    typer.echo(f"{indent}tokenizer:  {mi.tokenizer}")
    typer.echo(f"{indent}kind:       {'chat' if mi.chat else 'base'}")
    if mi.context_length:
        typer.echo(f"{indent}context:    {mi.context_length} tokens")
    typer.echo(f"{indent}learning rate: {lr.lora:.3g} LoRA, {lr.full:.3g} full fine-tuning")
    typer.echo(f"{indent}  rule:     {lr.rule}")
