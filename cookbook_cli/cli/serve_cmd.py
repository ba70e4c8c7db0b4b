"""`cookbook serve`: an OpenAI-compatible HTTP API over a run's checkpoint or a model."""

from __future__ import annotations

import typer

from cookbook_cli.cli.model_options import CHECKPOINT, ENGINE, MODEL, RENDERER, RUN


def serve(
    model: str = MODEL,
    run: str = RUN,
    checkpoint: str = CHECKPOINT,
    engine: str = ENGINE,
    renderer: str = RENDERER,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface; then set an API key)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on (0: any free port; the URL is printed)."),
    api_key: str = typer.Option(None, "--api-key", envvar="COOKBOOK_SERVE_API_KEY", help="Require `Authorization: Bearer KEY` on /v1 routes (also from COOKBOOK_SERVE_API_KEY)."),
    name: str = typer.Option(None, "--name", help="The model id clients send (default: the run's folder name, or the model)."),
    max_waiting: int = typer.Option(256, "--max-waiting", help="Requests being sampled or queued at once; more get 429 (Retry-After)."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds a request may wait for its reply before it gets 503 (Retry-After)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request."),
) -> None:
    """Serve a model or a run's checkpoint over OpenAI's API (chat, completions, streaming, tools).

    Messages are rendered with the run's renderer, so the model sees the tokens
    it was trained on; concurrent requests share the engine's batched sampler.
    Routes: /v1/chat/completions, /v1/completions, /v1/models, /health."""
    from cookbook_cli.cli.model_options import model_source
    from cookbook_cli.serving.server import ServeOptions, require_stack, serve as run_server, served_name

    options = ServeOptions(host, port, api_key, name, max_waiting, timeout)
    options.check()
    require_stack()
    source = model_source(model, run, checkpoint, engine, renderer)

    def ready(url: str) -> None:
        typer.echo(f"Serving {source.describe()} as {options.name or served_name(source)!r}")
        typer.echo(f"  renderer {source.renderer}; OpenAI API at {url}/v1 (Ctrl-C stops)", nl=True)
        typer.echo(f"  try: curl {url}/v1/models", nl=True)

    run_server(source, options, on_ready=ready, log_level="info" if verbose else "warning")
