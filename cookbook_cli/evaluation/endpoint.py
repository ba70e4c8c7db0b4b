"""Evaluators against any OpenAI-compatible endpoint (`cookbook eval --endpoint URL`).

The endpoint renders and samples on its side, so what crosses is messages:
an evaluator that asks its context for a message completer (the graded
benchmarks: arithmetic, gsm8k, multiple choice) gets one that posts to
`/v1/chat/completions` and reads each choice back as an assistant message,
and runs unchanged. Evaluators that need the model's tokens (NLL, RL
environments) are refused up front: an endpoint does not expose its tokenizer.

Each example sends its own seed (the one `cookbook eval --model` would use),
so against `cookbook serve` an evaluation repeats. A 429 or 503 is retried
after its Retry-After, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError
from cookbook_cli.evaluation.base import EvalContext

if TYPE_CHECKING:
    from cookbook_cli.completers import Completion, SamplingSettings
    from cookbook_cli.evaluation.base import Evaluator
    from cookbook_cli.evaluation.runner import EvalResult
    from cookbook_cli.types import Message, ToolSpec

RETRIES = 4  # of a 429/503 answer
REQUEST_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible API: its base URL (ending in /v1, or the server root) and key."""

    url: str
    api_key: str | None = None
    model: str | None = None

    @property
    def base(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/v1") else f"{url}/v1"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON reply of one call; errors become one line naming the endpoint."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode("utf-8") if body is not None else None
        for attempt in range(RETRIES + 1):
            req = urllib.request.Request(f"{self.base}{path}", data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                if e.code in (429, 503) and attempt < RETRIES:
                    time.sleep(min(30.0, float(e.headers.get("Retry-After") or 1)))
                    continue
                raise CookbookError(f"endpoint {self.base}{path} answered HTTP {e.code}: {_error_message(e)}") from None
            except urllib.error.URLError as e:
                raise CookbookError(f"cannot reach endpoint {self.base}: {e.reason}") from None
            except (OSError, ValueError) as e:
                raise CookbookError(f"endpoint {self.base}{path} gave no JSON reply: {e}") from None
        raise AssertionError("unreachable")

    def resolve_model(self) -> Endpoint:
        """This endpoint with its model named: the given one, else the only one /v1/models lists."""
        if self.model:
            return self
        listed = [m.get("id") for m in self.request("GET", "/models").get("data", []) if isinstance(m, dict)]
        if len(listed) != 1:
            raise CookbookError(f"endpoint {self.base} serves {len(listed)} models ({', '.join(map(str, listed[:5]))}); choose one with --endpoint-model")
        return Endpoint(self.url, self.api_key, str(listed[0]))

    def to_json(self) -> dict[str, Any]:
        """What result.json records of the model evaluated (never the key)."""
        return {"endpoint": self.base, "model": self.model}


def _error_message(e: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(e.read())["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(e.reason)


def _termination(finish_reason: Any) -> str:
    from cookbook_cli.completers import LENGTH, MALFORMED, STOP

    return {"stop": STOP, "tool_calls": STOP, "length": LENGTH}.get(str(finish_reason), MALFORMED)


class EndpointMessageCompleter:
    """A MessageCompleter over `/v1/chat/completions`."""

    def __init__(self, endpoint: Endpoint, settings: SamplingSettings, seed: int | None) -> None:
        settings.check()
        self.endpoint = endpoint
        self.settings = settings
        self.seed = seed

    def body(self, messages: list[Message], tools: list[ToolSpec] | None, num_samples: int) -> dict[str, Any]:
        from cookbook_cli.types import message_to_json

        s = self.settings
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": [message_to_json(m) for m in messages],
            "n": num_samples,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        if s.top_k != -1:
            body["top_k"] = s.top_k  # not OpenAI's; vLLM and cookbook serve take it
        if self.seed is not None:
            body["seed"] = self.seed
        if tools:
            body["tools"] = [t.to_openai() for t in tools]
        return body

    async def __call__(self, messages: list[Message], tools: list[ToolSpec] | None = None, num_samples: int = 1) -> list[Completion]:
        from cookbook_cli.completers import Completion
        from cookbook_cli.types import normalize_message

        reply = await asyncio.to_thread(self.endpoint.request, "POST", "/chat/completions", self.body(messages, tools, num_samples))
        choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != num_samples:
            raise CookbookError(f"endpoint {self.endpoint.base} gave {len(choices)} choices for n={num_samples}")
        out = []
        for c in choices:
            raw = dict(c.get("message") or {})
            raw["content"] = raw.get("content") or ""
            kept = {k: raw[k] for k in ("role", "content", "reasoning_content", "tool_calls") if raw.get(k) is not None}
            message = normalize_message(kept, f"endpoint {self.endpoint.base} choice {c.get('index', 0)}")
            # The endpoint keeps its tokens: only the message and how it ended cross.
            out.append(Completion(message, _termination(c.get("finish_reason")), [], []))
        return out


@dataclass
class EndpointEvalContext(EvalContext):
    """An EvalContext whose model is an endpoint: message completers only."""

    endpoint: Endpoint | None = None

    def message_completer(self, settings: SamplingSettings, example_id: str) -> EndpointMessageCompleter:  # type: ignore[override]
        assert self.endpoint is not None
        return EndpointMessageCompleter(self.endpoint, settings, self.seed_for(example_id))

    def token_completer(self, settings: SamplingSettings, example_id: str) -> Any:
        raise CookbookError("this evaluator samples tokens, which an OpenAI endpoint does not expose; evaluate it with --model or --run")


def check_message_level(evaluators: list[tuple[str, Any]]) -> None:
    """Refuse, before any request, evaluators that need the model's tokens."""
    for name, evaluator in evaluators:
        if not evaluator.works_on_messages():
            raise CookbookError(
                f"evaluator {name!r} needs the model's tokens (its tokenizer, logprobs of given text or a renderer), "
                "which an OpenAI endpoint does not expose; evaluate it with --model or --run, or choose a graded "
                "benchmark (arithmetic, gsm8k, multiple_choice: cookbook evaluators list)"
            )


def endpoint_results_root(endpoint: Endpoint) -> Path:
    """eval/<endpoint model>-<tag>/: the tag tells apart two endpoints serving one name."""
    import hashlib
    import re

    readable = re.sub(r"[^A-Za-z0-9._]+", "-", str(endpoint.model)).strip("-.")[-48:] or "endpoint"
    tag = hashlib.sha256(f"{endpoint.base}\0{endpoint.model}".encode()).hexdigest()[:8]
    return Path("eval") / f"{readable}-{tag}"


def evaluate_endpoint(
    evaluators: list[tuple[str, Evaluator]],
    endpoint: Endpoint,
    root: str | Path | None = None,
    seed: int = 0,
    progress: bool | None = None,
    concurrency: int = 8,
) -> list[EvalResult]:
    """Run message-level `evaluators` against `endpoint`, writing result files
    under `root` (default eval/<model>-<tag>/) as `evaluate_source` does; resumable."""
    from cookbook_cli.evaluation.runner import prepare, run_plans

    check_message_level(evaluators)
    endpoint = endpoint.resolve_model()
    ctx = EndpointEvalContext(None, None, seed, endpoint=endpoint)  # type: ignore[arg-type]
    results_root = Path(root).expanduser() if root is not None else endpoint_results_root(endpoint)
    plans = prepare(evaluators, endpoint.to_json(), results_root, ctx)
    return run_plans(plans, ctx, progress, concurrency)
