"""`cookbook renderers ...`: list chat formats and show how they tokenize."""

from __future__ import annotations

from pathlib import Path

import typer

from cookbook_cli.cli.groups import command_group

app = command_group("Chat formats (renderers): list them, render conversations with them.")


@app.command("list")
def list_renderers(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List registered renderers with the plugin that registered each."""
    from cookbook_cli.cli.output import print_json, print_table
    from cookbook_cli.plugins import registry

    rows = [
        {"name": e.name, "plugin": e.plugin, "description": e.description} for e in registry.renderers.entries().values()
    ]
    if as_json:
        print_json(rows)
        return
    print_table("Renderers", ["name", "plugin", "description"], [[r["name"], r["plugin"], r["description"]] for r in rows])


@app.command("render")
def render(
    name: str = typer.Argument(..., help="Renderer name (see `cookbook renderers list`)."),
    conversation: Path = typer.Option(..., "--conversation", "-c", help="JSONL file of {\"messages\": [...]} lines."),
    tokenizer: str = typer.Option(None, "--tokenizer", "-t", help="tokenizer.json, a folder holding one, a .gguf file, or a model name. Default: the renderer's model family."),
    generation: bool = typer.Option(False, "--generation", help="Render the prompt for the next assistant message instead of a training example."),
    train_on: str = typer.Option("last_assistant_message", "--train-on", help="Which tokens get weight 1 (TrainOnWhat)."),
    as_json: bool = typer.Option(False, "--json", help="Print one {\"tokens\", \"weights\"} object per conversation."),
) -> None:
    """Show each conversation's tokens, coloured by training weight (or as JSON)."""
    from cookbook_cli.cli.output import print_json
    from cookbook_cli.conversations import iter_conversations, located
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.models import tokenizer_for_renderer, tokenizer_source
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.types import TrainOnWhat

    mode = TrainOnWhat.parse(train_on)
    conversations = iter_conversations(conversation)
    next(iter_conversations(conversation), None)  # a missing or malformed file fails before the tokenizer loads
    renderer = get_renderer(name, tokenizer_source(tokenizer or tokenizer_for_renderer(name)))
    for i, conv in enumerate(conversations):
        try:
            if generation:
                tokens = renderer.build_generation_tokens(conv.messages, tools=conv.tools or None)
                weights = None
            else:
                tokens, weights = renderer.build_supervised_tokens(conv.messages, mode, conv.tools or None)
        except CookbookError as e:
            raise located(conv.source, e) from None
        if as_json:
            print_json({"tokens": tokens} if weights is None else {"tokens": tokens, "weights": weights})
        else:
            _show(renderer.tokenizer, i, tokens, weights)


def _show(tokenizer, index: int, tokens: list[int], weights: list[float] | None) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    trained = sum(1 for w in weights if w > 0) if weights is not None else 0
    title = f"conversation {index}: {len(tokens)} tokens"
    if weights is not None:
        title += f", {trained} trained (green)"
    console.rule(title)
    text = Text()
    for j, t in enumerate(tokens):
        piece = tokenizer.decode([t])
        w = weights[j] if weights is not None else 0.0
        shade = "on grey15" if j % 2 else "on grey23"  # alternate shading shows token boundaries
        style = f"bold green {shade}" if w > 0 else f"white {shade}"
        text.append(piece, style=style)
    console.print(text, soft_wrap=True)  # the terminal wraps; every newline printed is one in the tokens


@app.command("check")
def check(
    name: str = typer.Argument(..., help="Renderer name (see `cookbook renderers list`)."),
    tokenizer: str = typer.Option(
        None,
        "--tokenizer",
        "-t",
        help="tokenizer.json, a folder holding one (with its chat_template.jinja or tokenizer_config.json), a .gguf file, a registered model name, or a Hub repo id. Default: the renderer's model family.",
    ),
    template: Path = typer.Option(None, "--template", help="Jinja chat template file to compare with. Default: the tokenizer's own."),
    conversations: Path = typer.Option(
        None, "--conversations", "-c", help="JSONL file of {\"messages\": [...], \"tools\": [...]} lines. Default: a built-in varied set."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also explain documented differences and skipped conversations."),
) -> None:
    """Compare a renderer with the model's own chat template, token for token.

    Renders each conversation's generation prompts and its training example
    with the renderer and with the template (encoded by the same tokenizer),
    and reports per conversation: match, a difference the renderer documents,
    or the first differing token with decoded context. Exit status 1 on any
    mismatch (or when nothing could be compared)."""
    from cookbook_cli.cli.output import print_json
    from cookbook_cli.conversations import load_conversations
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.models import tokenizer_for_renderer, tokenizer_source
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.renderers.check import check_renderer
    from cookbook_cli.renderers.check_conversations import builtin_conversations

    template_text = None
    if template is not None:
        if not template.is_file():
            raise CookbookError(f"template file {str(template)!r} does not exist")
        template_text = template.read_text(encoding="utf-8")
    if conversations is not None:
        convs = load_conversations(conversations)
        names = [f"{conversations.name}:{i + 1}" for i in range(len(convs))]
    else:
        names, convs = builtin_conversations()
    renderer = get_renderer(name, tokenizer_source(tokenizer or tokenizer_for_renderer(name)))
    report = check_renderer(
        renderer, convs, template_text, names=names, template_source=str(template) if template is not None else ""
    )
    if as_json:
        print_json(report.to_json())
    else:
        typer.echo(report.format(verbose=verbose))
    if not report.ok:
        raise typer.Exit(1)
