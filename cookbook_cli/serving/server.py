"""Running the server: bind first, then load the model, then serve with uvicorn.

The socket is bound before the model loads, so a port in use is a one-line
error at once rather than after a long load, and `port=0` takes a free port
(the URL handed to `on_ready` says which).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.serving.model import ServedModel
    from cookbook_cli.sources import ModelSource

API_KEY_ENV = "COOKBOOK_SERVE_API_KEY"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    name: str | None = None  # the model id clients send; default: the run's folder name, or the model
    max_waiting: int = 256  # requests being sampled or queued; more get 429
    timeout: float = 300.0  # seconds a request may wait for its reply; then 503

    def check(self) -> None:
        if not self.host:
            raise CookbookError("--host must not be empty")
        if not 0 <= self.port <= 65535:
            raise CookbookError(f"--port must be between 0 and 65535, got {self.port}")
        if self.api_key is not None and not self.api_key.strip():
            raise CookbookError(f"--api-key (or {API_KEY_ENV}) must not be empty")
        if self.max_waiting < 1:
            raise CookbookError(f"--max-waiting must be at least 1, got {self.max_waiting}")
        if not self.timeout > 0:
            raise CookbookError(f"--timeout must be more than 0 seconds, got {self.timeout}")
        if self.name is not None and not self.name.strip():
            raise CookbookError("--name must not be empty")


def require_stack() -> None:
    """Starlette and uvicorn are an optional extra: say how to get them."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise CookbookError(f"cookbook serve needs {e.name}: pip install 'cookbook-cli[serve]'") from None


def served_name(source: ModelSource) -> str:
    """The model id of /v1/models: the run's folder name, or the base model."""
    return source.run_dir.resolve().name if source.run_dir is not None else source.base_model


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise CookbookError(f"--host {host!r} is not an address of this machine: {e.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise CookbookError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port (0: any free one)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def open_served_model(source: ModelSource, options: ServeOptions) -> Iterator[ServedModel]:
    """`source` loaded for serving (the engine is closed afterwards)."""
    from cookbook_cli.serving.admission import Admission
    from cookbook_cli.serving.model import ServedModel
    from cookbook_cli.sources import open_sampler, renderer_for

    renderer = renderer_for(source)
    with open_sampler(source) as client:
        yield ServedModel(options.name or served_name(source), client, renderer, Admission(options.max_waiting, options.timeout))


def _uvicorn_server(model: ServedModel, options: ServeOptions, on_started: Callable[[], None], log_level: str) -> Any:
    import uvicorn

    from cookbook_cli.serving.app import create_app

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                on_started()

    config = uvicorn.Config(create_app(model, options.api_key), log_level=log_level, access_log=log_level == "info", timeout_graceful_shutdown=5)
    return Server(config)


def serve(source: ModelSource, options: ServeOptions, on_ready: Callable[[str], None] | None = None, log_level: str = "warning") -> None:
    """Serve `source` until interrupted (Ctrl-C); `on_ready(url)` once it accepts requests."""
    options.check()
    require_stack()
    sock = bind(options.host, options.port)
    try:
        with open_served_model(source, options) as model:
            url = url_of(sock)
            server = _uvicorn_server(model, options, lambda: on_ready(url) if on_ready else None, log_level)
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()


@contextmanager
def running_server(model: ServedModel, options: ServeOptions | None = None) -> Iterator[str]:
    """Serve an already-loaded `model` from a background thread (tests,
    benchmarks); yields its URL once it accepts requests, stops on exit."""
    options = options or ServeOptions(port=0)
    options.check()
    require_stack()
    sock = bind(options.host, options.port)
    started = threading.Event()
    server = _uvicorn_server(model, options, started.set, "warning")
    failed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as e:  # noqa: BLE001 - reported to the waiting caller
            failed.append(e)
        finally:
            started.set()

    thread = threading.Thread(target=run, name="cookbook-serve", daemon=True)
    thread.start()
    try:
        started.wait()
        if failed or not thread.is_alive():
            raise CookbookError(f"the server did not start: {failed[0] if failed else 'it exited'}")
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
