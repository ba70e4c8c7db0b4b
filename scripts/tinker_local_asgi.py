"""SkyRL's Tinker API server behind a thin ASGI layer that fills in what the
current tinker SDK expects of a reply and SkyRL 0.4.0 does not send.

Runs inside the SkyRL virtual environment (Python 3.12, `skyrl[tinker,jax]`),
never inside cookbook's. SkyRL's API process starts its training engine as
`uv run <its own uv flags> -m skyrl.tinker.engine`, reading those flags from
its parent's command line, so launch this file as

    uv run --no-project python scripts/tinker_local_asgi.py --base-model DIR --backend jax --port N ...

(`scripts/tinker_local_server.sh` does). Arguments are SkyRL's own
(`python -m skyrl.tinker.api --help`) plus --host and --port.

What the layer adds:

- `POST /api/v1/asample`: the SDK asserts that the promise of a sample
  carries `sample_sequence_ids`, one id per requested sample (it stamps them
  onto the returned sequences); SkyRL's reply has none, so ids
  `<request id>-<i>` are added.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAMPLE_PATH = "/api/v1/asample"


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _with_sequence_ids(reply: bytes, request: bytes) -> bytes:
    """The promise JSON with one sequence id per requested sample, when it is a
    promise (an error reply or a reply that already has ids passes unchanged)."""
    try:
        promise = json.loads(reply)
        num_samples = int(json.loads(request).get("num_samples", 1))
    except (ValueError, AttributeError, TypeError):
        return reply
    if not isinstance(promise, dict) or "request_id" not in promise or promise.get("sample_sequence_ids"):
        return reply
    promise["sample_sequence_ids"] = [f"{promise['request_id']}-{i}" for i in range(num_samples)]
    return json.dumps(promise).encode()


class SampleSequenceIds:
    """ASGI middleware: everything passes through except the reply to
    `POST /api/v1/asample`, which gets `sample_sequence_ids`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != SAMPLE_PATH:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: Message | None = None
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            assert start is not None
            reply = b"".join(parts)
            if start["status"] == 200:
                reply = _with_sequence_ids(reply, body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(reply)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": reply, "more_body": False})

        await self.app(scope, replay, capture)


def main() -> None:
    import uvicorn
    from skyrl.tinker import api
    from skyrl.tinker.config import EngineConfig, add_model
    from skyrl.utils.log import get_uvicorn_log_config

    parser = argparse.ArgumentParser(description="SkyRL's Tinker API server, with replies the current tinker SDK accepts")
    add_model(parser, EngineConfig)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8555)
    args = parser.parse_args()
    # What SkyRL's own `python -m skyrl.tinker.api` does before serving.
    api.app.state.engine_config = EngineConfig.model_validate(
        {k: v for k, v in vars(args).items() if k in EngineConfig.model_fields}
    )
    uvicorn.run(SampleSequenceIds(api.app), host=args.host, port=args.port, log_config=get_uvicorn_log_config())


if __name__ == "__main__":
    main()
