"""Bad requests get OpenAI's error shape with the right status, and the server
keeps answering afterwards; a full queue gets 429 and a late reply 503."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from .conftest import API_KEY, GatedClient

pytest.importorskip("openai")

GOOD = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def post(url: str, body: bytes | dict, key: str | None = API_KEY, path: str = "/v1/chat/completions") -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, data=data, headers=headers)) as r:
            return r.status, json.loads(r.read()), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), {k.lower(): v for k, v in e.headers.items()}


def assert_error(status: int, body: dict, want: int, param: str | None = None, code: str | None = None) -> None:
    assert status == want, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        (b'{"model": "tiny", "messages": [', 400, None, "invalid_json"),
        (b"[1, 2]", 400, None, "invalid_json"),
        ({**GOOD, "model": "gpt-4"}, 404, "model", "model_not_found"),
        ({**GOOD, "max_tokens": 0}, 400, "max_tokens", None),
        ({**GOOD, "logit_bias": {"5": 10}, "functions": []}, 400, "functions", "unsupported_parameter"),
        ({**GOOD, "presence_penalty": 0.5}, 400, "presence_penalty", "unsupported_parameter"),
        ({**GOOD, "messages": [{"role": "user", "content": "many words " * 3000}]}, 400, "messages", "context_length_exceeded"),
        ({**GOOD, "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages", None),
        ({**GOOD, "temperature": -1}, 400, "temperature", None),
        ({**GOOD, "tool_choice": "required"}, 400, "tool_choice", None),
    ],
    ids=["malformed-json", "not-an-object", "unknown-model", "max-tokens-0", "unsupported-named", "penalty", "too-long", "bad-role", "temperature", "tool-choice"],
)
def test_bad_request_then_a_good_one(live, body, status, param, code):
    got, error, _ = post(live.url, body)
    assert_error(got, error, status, param, code)
    ok, reply, _ = post(live.url, GOOD)
    assert ok == 200 and reply["choices"][0]["message"]["role"] == "assistant"


def test_unsupported_parameters_are_named_in_the_message(live):
    _, body, _ = post(live.url, {**GOOD, "functions": [], "audio": {}})
    assert "audio" in body["error"]["message"] and "functions" in body["error"]["message"]


def test_api_key_is_required(live):
    import openai

    for key in ("wrong", None):
        status, body, _ = post(live.url, GOOD, key=key)
        assert_error(status, body, 401, code="invalid_api_key")
    with pytest.raises(openai.AuthenticationError):
        live.client(api_key="wrong").chat.completions.create(model="tiny", messages=GOOD["messages"], max_tokens=2)
    assert live.client().chat.completions.create(model="tiny", messages=GOOD["messages"], max_tokens=2).choices


def test_unknown_route_and_method(live):
    status, body, _ = post(live.url, GOOD, path="/v1/embeddings")
    assert_error(status, body, 404)
    try:
        urllib.request.urlopen(urllib.request.Request(live.url + "/v1/chat/completions"))
    except urllib.error.HTTPError as e:
        assert e.code == 405 and set(json.loads(e.read())["error"]) == {"message", "type", "param", "code"}


def _echo_client(renderer):  # replies "ok" and the stop token
    return GatedClient(renderer.tokenizer, lambda prompt: [*renderer.tokenizer.encode("ok"), *renderer.stop_token_ids()])


def test_a_full_queue_gets_429_and_a_late_reply_503(live, serve_standin):
    renderer = live.model.renderer
    client = _echo_client(renderer)
    client.gate.clear()
    with serve_standin(renderer, client, max_waiting=1, timeout=0.5) as standin:
        body = {**GOOD, "model": "standin"}
        first: list[tuple[int, dict, dict]] = []
        waiting = threading.Thread(target=lambda: first.append(post(standin.url, body)))
        waiting.start()
        try:
            assert client.entered.wait(30)
            status, error, headers = post(standin.url, body)
            waiting.join()  # its reply was not ready in time: 503
        finally:
            client.gate.set()  # never leave a sampler waiting, whatever failed
        assert_error(status, error, 429, code="queue_full")
        assert headers.get("retry-after") == "1"
        status, error, headers = first[0]
        assert_error(status, error, 503, code="timeout")
        assert int(headers["retry-after"]) >= 1
        # The server serves on; the late request holds its place until its sampling
        # ends, so the client may meet one more 429, which it retries after Retry-After.
        reply = standin.client(max_retries=3).chat.completions.create(model="standin", messages=GOOD["messages"], max_tokens=2)
        assert reply.choices[0].message.content == "ok"
