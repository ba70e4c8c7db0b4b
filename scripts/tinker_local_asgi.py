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
- `POST /api/v1/retrieve_future`: Tinker's prompt logprobs have one entry per
  prompt token, the first undefined (NaN on the wire, None in the SDK), which
  is what `compute_logprobs` returns; SkyRL's JAX backend leaves that first
  entry out, so for a sample that asked for prompt logprobs a NaN is put back
  in front when exactly one is missing.
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
RETRIEVE_PATH = "/api/v1/retrieve_future"
PROTO_CONTENT_TYPE = b"application/x-protobuf"

# (request body, reply status, reply headers, reply body) -> the reply body to send
Rewrite = Callable[[bytes, int, list[tuple[bytes, bytes]], bytes], bytes]


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


async def _rewritten(app: ASGIApp, scope: Scope, receive: Receive, send: Send, rewrite: Rewrite) -> None:
    """Run `app` on a request whose body is read first, and send its reply
    after `rewrite` (content-length fixed)."""
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
        headers = list(start.get("headers", []))
        reply = rewrite(body, start["status"], headers, b"".join(parts))
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(reply)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": reply, "more_body": False})

    await app(scope, replay, capture)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _prompt_length(sample_request: dict[str, Any]) -> int:
    chunks = (sample_request.get("prompt") or {}).get("chunks") or []
    return sum(len(c.get("tokens") or []) for c in chunks if isinstance(c, dict))


class TinkerReplies:
    """ASGI middleware: everything passes through except the replies to a
    sample's promise and to its result, completed as the module says."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.prompt_lengths: dict[str, int] = {}  # request id -> prompt tokens, for samples asking prompt logprobs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" and scope.get("method") == "POST" else None
        if path == SAMPLE_PATH:
            await _rewritten(self.app, scope, receive, send, self._promise)
        elif path == RETRIEVE_PATH and self.prompt_lengths:
            await _rewritten(self.app, scope, receive, send, self._result)
        else:
            await self.app(scope, receive, send)

    def _promise(self, request: bytes, status: int, headers: list[tuple[bytes, bytes]], reply: bytes) -> bytes:
        promise, sample = _json(reply), _json(request)
        if status != 200 or not isinstance(promise, dict) or "request_id" not in promise or not isinstance(sample, dict):
            return reply
        request_id = str(promise["request_id"])
        if sample.get("prompt_logprobs") or sample.get("topk_prompt_logprobs"):
            self.prompt_lengths[request_id] = _prompt_length(sample)
        if not promise.get("sample_sequence_ids"):
            promise["sample_sequence_ids"] = [f"{request_id}-{i}" for i in range(int(sample.get("num_samples", 1)))]
        return json.dumps(promise).encode()

    def _result(self, request: bytes, status: int, headers: list[tuple[bytes, bytes]], reply: bytes) -> bytes:
        asked = _json(request)
        request_id = str(asked.get("request_id")) if isinstance(asked, dict) else None
        if request_id not in self.prompt_lengths or status != 200:
            return reply
        prompt_length = self.prompt_lengths.pop(request_id)
        if not any(k.lower() == b"content-type" and v.startswith(PROTO_CONTENT_TYPE) for k, v in headers):
            return reply
        import numpy as np
        from tinker.proto import tinker_public_pb2 as pb

        response = pb.SampleResponse.FromString(reply)
        logprobs = np.frombuffer(response.prompt_logprobs, dtype=np.float32)
        if prompt_length and len(logprobs) == prompt_length - 1:
            response.prompt_logprobs = np.concatenate([[np.nan], logprobs]).astype(np.float32).tobytes()
        return response.SerializeToString()


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
    uvicorn.run(TinkerReplies(api.app), host=args.host, port=args.port, log_config=get_uvicorn_log_config())


if __name__ == "__main__":
    main()
