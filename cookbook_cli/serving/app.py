"""The HTTP routes (Starlette): `/v1/chat/completions`, `/v1/completions`,
`/v1/models`, `/health`. Every refusal is OpenAI's error shape with its status."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from cookbook_cli.serving.errors import ApiError

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from cookbook_cli.serving.model import ServedModel


def create_app(model: ServedModel, api_key: str | None = None) -> Starlette:
    """The ASGI app serving `model`; with `api_key`, every /v1 route asks for
    `Authorization: Bearer <api_key>`."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    from cookbook_cli.serving import openai_format as fmt
    from cookbook_cli.serving.requests import parse_chat, parse_completion, parse_json

    def error_response(e: ApiError) -> Response:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers())

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), api_key.encode()):
            what = "a wrong API key" if token else "no API key (Authorization: Bearer ...)"
            raise ApiError(401, f"the request has {what}", "invalid_request_error", code="invalid_api_key")

    async def body_of(request: Request) -> dict[str, Any]:
        check_key(request)
        return parse_json(await request.body())

    def endpoint(parse: Any, generate: Any, prefix: str, whole: Any, chunks: Any) -> Any:
        """A generation route: parse the body, sample, answer whole or as events."""

        async def handle(request: Request) -> Response:
            req = parse(await body_of(request))
            gen = await generate(req)
            ident, logprobs = model.new_id(prefix), req.sampling.top_logprobs is not None
            if req.sampling.stream:
                events = chunks(gen, ident, model.name, model.tokenizer, logprobs, req.sampling.include_usage)
                return StreamingResponse(events, media_type="text/event-stream")
            return JSONResponse(whole(gen, ident, model.name, model.tokenizer, logprobs))

        return handle

    chat = endpoint(parse_chat, model.chat, "chatcmpl", fmt.chat_completion, fmt.chat_chunks)
    completions = endpoint(parse_completion, model.complete, "cmpl", fmt.text_completion, fmt.completion_chunks)

    def model_card() -> dict[str, Any]:
        return {"id": model.name, "object": "model", "created": model.created, "owned_by": model.owned_by}

    async def models(request: Request) -> Response:
        check_key(request)
        return JSONResponse({"object": "list", "data": [model_card()]})

    async def one_model(request: Request) -> Response:
        check_key(request)
        model.check_model(request.path_params["name"])
        return JSONResponse(model_card())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": model.name, "waiting": model.admission.waiting})

    async def api_error(request: Request, e: Exception) -> Response:
        assert isinstance(e, ApiError)
        return error_response(e)

    async def http_error(request: Request, e: Exception) -> Response:
        assert isinstance(e, HTTPException)
        kind = "not_found" if e.status_code == 404 else None
        return error_response(ApiError(e.status_code, f"{request.method} {request.url.path}: {e.detail}", code=kind))

    async def server_error(request: Request, e: Exception) -> Response:
        from cookbook_cli.errors import first_line

        return error_response(ApiError(500, f"the server failed: {type(e).__name__}: {first_line(e)}", "server_error"))

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{name:path}", one_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: server_error})
