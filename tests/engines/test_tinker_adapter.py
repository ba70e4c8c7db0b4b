"""The tinker engine's adapter, offline: every protocol method, sync and async,
against a stand-in service (fake_tinker.py) that answers with the SDK's own
future and response types and whose signatures are the installed SDK's; and
its first contact with an unreachable service or a rejected key."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from cookbook_cli.engines.protocol import SamplingClient, ServiceClient, TrainingClient
from cookbook_cli.errors import CookbookError
from cookbook_cli.testing import tiny_tokenizer_path


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fake = _load("fake_tinker")
tinker_http = _load("tinker_http")
BASE = str(tiny_tokenizer_path())  # the fake's "base model": a tokenizer get_tokenizer can load offline
TOKENS = [5, 60, 70, 55, 65]  # targets average 0.625 (x 100): above the initial w = 0.5


@pytest.fixture
def service(monkeypatch):
    """(TinkerServiceClient over the fake, the fake's server). The first-contact
    check talks to a local server that answers 200, as the service would."""
    import tinker

    server = fake.FakeServiceClient.fresh()
    monkeypatch.setattr(tinker, "ServiceClient", fake.FakeServiceClient)
    monkeypatch.setattr(tinker, "RestClient", fake.FakeRestClient)
    from cookbook_cli.engines.tinker_engine import TinkerServiceClient

    with tinker_http.answering(200) as (url, seen):
        svc = TinkerServiceClient(api_key="tml-test", base_url=url)
    assert seen == [("POST", "/api/v1/client/config", "tml-test")]
    yield svc, server
    server.worker.shutdown()


@pytest.fixture(autouse=True)
def strict(caplog):
    """No deprecated SDK call (FutureWarning), and no blocking SDK call from async code
    (the SDK logs "Synchronous method ... called from async context")."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        with caplog.at_level(logging.WARNING, logger="tinker"):
            yield
    assert not [r for r in caplog.get_records("call") if "called from async context" in r.getMessage()]


def datum(tokens: list[int] = TOKENS, weight: float = 1.0) -> Any:
    from tinker import types

    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": types.TensorData(data=tokens[1:], dtype="int64", shape=[len(tokens) - 1]),
            "weights": types.TensorData(data=[weight] * (len(tokens) - 1), dtype="float32", shape=[len(tokens) - 1]),
        },
    )


def expected_logprobs(w: float, tokens: list[int] = TOKENS) -> list[float]:
    return [float(fake.logprob(w, t)) for t in tokens[1:]]


def adam(lr: float = 0.1) -> Any:
    from tinker import types

    return types.AdamParams(learning_rate=lr)


# -- the fake is the SDK's shape ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(fake.FAKE_CLASSES))
def test_the_fake_has_the_sdks_signatures(name):
    """Every method of the stand-in exists on the SDK class with the same
    parameters (a subset, same kinds) and the same deprecation, so the adapter
    calls here what it may call on the real client."""
    import tinker

    real_cls, fake_cls = getattr(tinker, name), fake.FAKE_CLASSES[name]
    for method, member in vars(fake_cls).items():
        if method.startswith("_") or not callable(member) or isinstance(member, classmethod):
            continue
        real = getattr(real_cls, method)
        real_params = inspect.signature(real).parameters
        for p in inspect.signature(member).parameters.values():
            assert p.name in real_params, f"{name}.{method}: the SDK has no parameter {p.name!r}"
            assert p.kind == real_params[p.name].kind, f"{name}.{method}({p.name}): not the SDK's kind"
        assert bool(getattr(member, "__deprecated__", None)) == bool(getattr(real, "__deprecated__", None)), f"{name}.{method}"


# -- sync -------------------------------------------------------------------------------------
def test_training_step(service):
    from tinker import types

    svc, server = service
    assert isinstance(svc, ServiceClient)
    tc = svc.create_lora_training_client(BASE, rank=8, seed=3)
    assert isinstance(tc, TrainingClient) and tc.get_base_model() == BASE
    assert tc.get_tokenizer().vocab_size == 512 and tc.get_info().lora_rank == 8  # the tiny tokenizer, by base model
    fb = tc.forward_backward([datum()], "cross_entropy", {"unused": 1.0})
    opt = tc.optim_step(adam())
    out = fb.result()
    assert isinstance(out, types.ForwardBackwardOutput)
    assert out.loss_fn_outputs[0]["logprobs"].tolist() == pytest.approx(expected_logprobs(0.5))
    step = opt.result()
    assert isinstance(step, types.OptimStepResponse)
    # Adam's first step moves w by the learning rate, towards the targets
    assert step.metrics["w"] == pytest.approx(0.6)
    after = tc.forward([datum()], "cross_entropy").result()
    assert after.loss_fn_outputs[0]["logprobs"].tolist() == pytest.approx(expected_logprobs(0.6))
    assert [c[0] for c in server.calls] == [
        "ServiceClient", "create_lora_training_client", "forward_backward", "optim_step", "forward"
    ]
    assert server.calls[1][1] == (BASE, 8, 3) and server.calls[2][1] == ("cross_entropy", {"unused": 1.0})


def test_custom_loss_trains_like_the_builtin(service):
    from cookbook_cli.engines.losses import BUILTIN_LOSSES

    svc, _ = service
    builtin, custom = (svc.create_lora_training_client(BASE, rank=4) for _ in range(2))
    builtin.forward_backward([datum()], "cross_entropy").result()
    out = custom.forward_backward_custom([datum()], BUILTIN_LOSSES["cross_entropy"].as_custom_loss()).result()
    assert out.loss_fn_outputs[0]["logprobs"].tolist() == pytest.approx(expected_logprobs(0.5))
    small = [datum(weight=0.001)]  # Adam's first step is the learning rate whatever the gradient's size
    for tc in (builtin, custom):
        tc.optim_step(adam(0.01)).result()
    w_builtin = builtin.forward(small, "cross_entropy").result().loss_fn_outputs[0]["logprobs"].tolist()
    w_custom = custom.forward(small, "cross_entropy").result().loss_fn_outputs[0]["logprobs"].tolist()
    assert w_builtin == pytest.approx(w_custom) and w_builtin != pytest.approx(expected_logprobs(0.5))


def trained_three_steps_and_saved(svc):  # type: ignore[no-untyped-def]
    """(a LoRA client after three steps, the path of its state saved as 'step3')."""
    tc = svc.create_lora_training_client(BASE, rank=8)
    for _ in range(3):
        tc.forward_backward([datum()], "cross_entropy")
        tc.optim_step(adam())
    return tc, tc.save_state("step3").result().path


def test_save_and_load_state(service):
    """load_state restores the saved weights with a fresh optimizer,
    load_state_with_optimizer with the saved Adam moments: their next steps differ."""
    svc, _ = service
    tc, path = trained_three_steps_and_saved(svc)
    saved = tc.forward([datum()], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].tolist()
    with pytest.raises(ValueError, match="exists"):
        tc.save_state("step3").result()
    assert tc.save_state("step3", overwrite=True).result().path == path
    tc.forward_backward([datum()], "cross_entropy")
    tc.optim_step(adam()).result()  # move away from the saved weights

    def next_step(load: str) -> float:
        restored = svc.create_lora_training_client(BASE, rank=8)
        assert getattr(restored, load)(path).result().path == path
        assert restored.forward([datum()], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].tolist() == pytest.approx(saved)
        restored.forward_backward([datum()], "cross_entropy")
        return restored.optim_step(adam()).result().metrics["w"]

    fresh, resumed = next_step("load_state"), next_step("load_state_with_optimizer")
    assert fresh != pytest.approx(resumed)
    # the service's own factories: the same two clients, named after the saved base model
    for factory, expected in (("create_training_client_from_state", fresh), ("create_training_client_from_state_with_optimizer", resumed)):
        tc2 = getattr(svc, factory)(path)
        assert isinstance(tc2, TrainingClient) and tc2.get_base_model() == BASE
        tc2.forward_backward([datum()], "cross_entropy")
        assert tc2.optim_step(adam()).result().metrics["w"] == pytest.approx(expected)


def test_a_service_of_the_older_api_restores_into_a_client_of_the_checkpoints_shape(service, capsys):
    """SkyRL's Tinker server 0.4 answers the one-request restore with HTTP 422
    (no model_id): the engine says so once, then makes a LoRA client of the
    checkpoint's base model and rank and loads the state as its first request;
    the restored clients step exactly like the current API's."""
    svc, server = service
    _, path = trained_three_steps_and_saved(svc)

    def next_w(client) -> float:  # type: ignore[no-untyped-def]
        assert client.get_base_model() == BASE
        client.forward_backward([datum()], "cross_entropy")
        return client.optim_step(adam()).result().metrics["w"]

    expected = [next_w(svc.create_training_client_from_state(path)), next_w(svc.create_training_client_from_state_with_optimizer(path))]
    server.older_api = True
    got = [next_w(svc.create_training_client_from_state(path)), next_w(svc.create_training_client_from_state_with_optimizer(path))]
    assert got == pytest.approx(expected) and expected[0] != pytest.approx(expected[1])
    err = capsys.readouterr().err
    assert err.count("restores checkpoints the older way") == 1 and "Traceback" not in err
    shaped = [c for c in server.calls if c[0] == "create_lora_training_client"][-2:]
    assert [c[1][:2] for c in shaped] == [(BASE, 8), (BASE, 8)]  # the checkpoint's shape
    # a live, unused client (a resumed run's) is itself loaded: no extra client
    live = svc.create_lora_training_client(BASE, rank=8)
    before = len([c for c in server.calls if c[0] == "create_lora_training_client"])
    assert live.load_state_with_optimizer(path).result().path == path
    assert len([c for c in server.calls if c[0] == "create_lora_training_client"]) == before
    assert next_w(live) == pytest.approx(expected[1])

    async def restored_async() -> list[float]:
        return [
            next_w(await svc.create_training_client_from_state_async(path)),
            next_w(await svc.create_training_client_from_state_with_optimizer_async(path)),
        ]

    assert asyncio.run(restored_async()) == pytest.approx(expected)


def test_any_other_refusal_from_a_client_factory_is_one_line(service, monkeypatch):
    import httpx
    import tinker

    svc, _ = service

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        request = httpx.Request("POST", "http://fake/api/v1/create_model")
        raise tinker.BadRequestError("Error code: 400 - rank too large", response=httpx.Response(400, request=request), body=None)

    monkeypatch.setattr(fake.FakeServiceClient, "create_lora_training_client", refuse)
    with pytest.raises(CookbookError, match=r"refused a request \(HTTP 400"):
        svc.create_lora_training_client(BASE, rank=8)


def test_sampling_clients(service):
    from tinker import types

    svc, _ = service
    tc = svc.create_lora_training_client(BASE, rank=8)
    tc.forward_backward([datum()], "cross_entropy")
    tc.optim_step(adam())  # w = 0.6: samples 60, 61, ...
    params, prompt = types.SamplingParams(max_tokens=3), types.ModelInput.from_ints([7, 60])
    path = tc.save_weights_for_sampler("s").result().path
    for sc in (
        tc.save_weights_and_get_sampling_client(),
        tc.save_weights_and_get_sampling_client("named"),
        tc.create_sampling_client(path),
        svc.create_sampling_client(model_path=path),
    ):
        assert isinstance(sc, SamplingClient) and sc.get_base_model() == BASE
        resp = sc.sample(prompt, 2, params, include_prompt_logprobs=True).result()
        assert isinstance(resp, types.SampleResponse) and [s.tokens for s in resp.sequences] == [[60, 61, 62]] * 2
        assert resp.sequences[0].logprobs == pytest.approx([fake.logprob(0.6, t) for t in (60, 61, 62)])
        assert resp.prompt_logprobs == pytest.approx([None, fake.logprob(0.6, 60)])
        assert sc.compute_logprobs(prompt).result() == pytest.approx([None, fake.logprob(0.6, 60)])
    base = svc.create_sampling_client(base_model=BASE)
    assert base.get_base_model() == BASE and base.get_tokenizer().decode(base.get_tokenizer().encode("ok")) == "ok"


def test_rank_is_checked(service):
    svc, _ = service
    with pytest.raises(CookbookError, match="rank >= 1"):
        svc.create_lora_training_client(BASE, rank=0)


# -- async ------------------------------------------------------------------------------------
def test_every_async_twin(service):
    """Each `_async` twin gives what its sync method gives, without a deprecated SDK
    call and without blocking the event loop on an SDK future."""
    from cookbook_cli.engines.losses import BUILTIN_LOSSES
    from tinker import types

    svc, _ = service
    params, prompt = types.SamplingParams(max_tokens=2), types.ModelInput.from_ints([7, 50])

    async def run() -> None:
        tc = await svc.create_lora_training_client_async(BASE, rank=8)
        assert isinstance(tc, TrainingClient)
        fb = await tc.forward_backward_async([datum()], "cross_entropy")
        opt = await tc.optim_step_async(adam())
        assert (await fb).loss_fn_outputs[0]["logprobs"].tolist() == pytest.approx(expected_logprobs(0.5))
        assert (await opt).metrics["w"] == pytest.approx(0.6)
        forward = await (await tc.forward_async([datum()], "cross_entropy"))
        assert forward.loss_fn_outputs[0]["logprobs"].tolist() == pytest.approx(expected_logprobs(0.6))
        custom = await (await tc.forward_backward_custom_async([datum()], BUILTIN_LOSSES["cross_entropy"].as_custom_loss()))
        assert custom.metrics["loss:sum"] == pytest.approx(forward.metrics["loss:sum"])
        path = (await (await tc.save_state_async("a"))).path
        sampler = (await (await tc.save_weights_for_sampler_async("sa"))).path
        for load in ("load_state_async", "load_state_with_optimizer_async"):
            assert (await (await getattr(tc, load)(path))).path == path
        for tc2 in (
            await svc.create_training_client_from_state_async(path),
            await svc.create_training_client_from_state_with_optimizer_async(path),
        ):
            assert tc2.get_base_model() == BASE
        for sc in (
            await tc.save_weights_and_get_sampling_client_async(),
            await tc.save_weights_and_get_sampling_client_async("named"),
            await tc.create_sampling_client_async(sampler),
            await svc.create_sampling_client_async(model_path=sampler),
        ):
            resp = await sc.sample_async(prompt, 1, params)
            assert resp.sequences[0].tokens == [60, 61]
            assert await sc.compute_logprobs_async(prompt) == pytest.approx([None, fake.logprob(0.6, 50)])

    asyncio.run(run())


# -- first contact: a service that is not there, a key that is refused --------------------
def test_missing_key(monkeypatch):
    from cookbook_cli.engines.tinker_engine import MISSING_KEY, TinkerServiceClient

    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    with pytest.raises(CookbookError) as e:
        TinkerServiceClient()
    assert str(e.value) == MISSING_KEY


def test_an_unreachable_service_fails_in_one_line_after_bounded_retries(capsys):
    from cookbook_cli.engines.tinker_engine import CONNECT_ATTEMPTS, TinkerServiceClient

    url = tinker_http.closed_port_url()
    with pytest.raises(CookbookError) as e:
        tc = TinkerServiceClient(api_key="tml-bogus", base_url=url)
        tc.create_lora_training_client(BASE)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"cannot reach the Tinker service at {url} (ConnectError")
    assert "check the URL (engine_options.base_url or TINKER_BASE_URL)" in message
    retries = [line for line in capsys.readouterr().err.splitlines() if "retrying" in line]
    assert len(retries) == CONNECT_ATTEMPTS - 1 and retries[0].startswith(f"tinker: cannot reach {url}")


def test_a_rejected_key_fails_at_once():
    from cookbook_cli.engines.tinker_engine import TinkerServiceClient

    with tinker_http.answering(401, {"detail": "Invalid API key"}) as (url, seen):
        with pytest.raises(CookbookError) as e:
            tc = TinkerServiceClient(api_key="tml-bogus", base_url=url)
            tc.create_lora_training_client(BASE)
    assert str(e.value) == (
        f"the Tinker service at {url} rejected the API key (HTTP 401: Invalid API key): "
        "check TINKER_API_KEY (a key from the Tinker console)"
    )
    assert seen == [("POST", "/api/v1/client/config", "tml-bogus")]


def test_a_rejection_without_json_is_quoted():
    from cookbook_cli.engines.tinker_engine import TinkerServiceClient

    with tinker_http.answering(403, "Forbidden by proxy\n") as (url, _):
        with pytest.raises(CookbookError, match=r"rejected the API key \(HTTP 403: Forbidden by proxy\): check TINKER_API_KEY"):
            TinkerServiceClient(api_key="tml-bogus", base_url=url)


def test_older_sdks_async_factories_are_used_when_not_deprecated():
    """SDKs before 0.38 made clients in the plain factory (blocking) and had a
    non-deprecated `_async` twin: the adapter awaits the twin there."""
    from cookbook_cli.engines.tinker_engine import _call_async

    class OlderSdk:
        def create_sampling_client(self, **kwargs: Any) -> Any:
            raise AssertionError("blocks the event loop")

        async def create_sampling_client_async(self, **kwargs: Any) -> Any:
            return ("client", kwargs)

    assert asyncio.run(_call_async(OlderSdk(), "create_sampling_client", base_model="m")) == ("client", {"base_model": "m"})


def test_sdk_errors_after_first_contact_are_one_line(service, monkeypatch):
    """A key revoked, or the service gone, between the check and a factory call."""
    import httpx
    import tinker

    svc, _ = service
    request = httpx.Request("POST", f"{svc.base_url}/api/v1/create_model")
    failures = {
        "rejected the API key (HTTP 403: key revoked)": tinker.PermissionDeniedError(
            "denied", response=httpx.Response(403, json={"detail": "key revoked"}, request=request), body=None
        ),
        f"cannot reach the Tinker service at {svc.base_url} (APIConnectionError": tinker.APIConnectionError(request=request),
    }
    for expected, error in failures.items():
        def fail(*args: Any, error: Exception = error, **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(svc.inner, "create_lora_training_client", fail)
        with pytest.raises(CookbookError, match=None) as e:
            svc.create_lora_training_client(BASE)
        assert expected in str(e.value) and "\n" not in str(e.value)
