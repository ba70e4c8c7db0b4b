"""Test helpers for plugin authors, loaded by pytest through the `pytest11`
entry point (so `pip install cookbook-cli` makes the fixtures available with
no import and no conftest).

Fixtures:

- `cookbook_plugin`: registers a plugin object for one test and removes it after.
- `cookbook_load_only`: reloads plugins with autoloading limited to the given
  distributions (none: only core's built-ins), for one test; so a test sees
  its own package's entry point and not whatever else is installed.
- `cookbook_local_engine`: a small randomly initialised model on the local
  PyTorch engine (over a tiny tokenizer, CPU, offline), shared by a session,
  for env and loss smoke tests.

Assertions (plain functions: import them from `cookbook_cli.testing`):

- `assert_renderer_matches_template(renderer, tokenizer, conversations)`:
  token-for-token comparison with the model's chat template, through the same
  engine as `cookbook renderers check` (documented differences applied to the
  template side, then equal tokens required; the documented and skipped
  conversations can be pinned).
- `check_env(name, engine)`: builds the environment, runs a few rollouts and
  validates observations, stop conditions, rewards, episode ends and pickling.
- `check_loss(name, engine)`: runs the loss the way recipes do and checks it
  is finite, actually moves the weights, and survives a batch with nothing to
  learn.
- `check_dataset(name)`: builds the dataset and checks a batch of Datums.

Utilities: `reply_tokens(renderer, text)` (the tokens of a sampled reply that
ends at the renderer's stop sequence, to test an env's rewards without a
model), `tiny_tokenizer_path()`, `small_local_engine()`, `smoke_data()`.

Loading this module must stay cheap (pytest imports it in every session of
every project installed beside cookbook): everything beyond pytest is
imported inside the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.conversations import Conversation
    from cookbook_cli.engines.protocol import SamplingClient, ServiceClient, TrainingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.renderers.check import CheckReport
    from cookbook_cli.rl.types import TrajectoryGroup
    from cookbook_cli.tokenizers import Tokenizer

DEFAULT_RENDERER = "role_colon"
"""Works with any tokenizer (its stop sequence is a string)."""


def tiny_tokenizer_path() -> Path:
    """A tiny tokenizer shipped with cookbook: byte-level BPE (encodes any
    text) with 512 tokens, ChatML special tokens (`<|im_start|>`,
    `<|im_end|>`, `<|endoftext|>`) and a ChatML chat template beside it. A
    random model over it samples about ten times faster than one over a real
    128k vocabulary, so smoke tests stay quick."""
    from cookbook_cli.scaffold import tiny_tokenizer_path as path

    return path()


# -- plugin fixtures ----------------------------------------------------------------
@pytest.fixture
def cookbook_plugin() -> Iterator[Callable[..., str]]:
    """Call with a plugin object (a module or class with `@hookimpl` functions);
    it is registered for this test only. An object that is already registered
    (e.g. your module, loaded through its entry point) is left as it is."""
    from cookbook_cli.plugins import manager

    names: list[str] = []

    def register(obj: Any, name: str | None = None) -> str:
        pm = manager.load()
        existing = pm.get_name(obj) if pm.is_registered(obj) else None
        if existing is not None and (name is None or name == existing):
            return existing
        plugin_name = manager.register_plugin(obj, name=name)
        names.append(plugin_name)
        return plugin_name

    try:
        yield register
    finally:
        for n in names:
            manager.unregister_plugin(n)


@pytest.fixture
def cookbook_load_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Call with distribution names (e.g. your package's): plugins are reloaded
    with only those autoloaded, as with `COOKBOOK_LOAD_PLUGINS=a,b`; with no
    names, only core's built-ins. Restored after the test. Fails the test when
    a plugin fails to load, or when a named distribution is not installed (or
    declares no `cookbook` entry point)."""
    from cookbook_cli.plugins import manager

    def load_only(*distributions: str) -> None:
        monkeypatch.setenv("COOKBOOK_LOAD_PLUGINS", ",".join(distributions))
        manager.reset()
        errors = manager.load_errors()
        if errors:
            pytest.fail("\n".join(e.line() for e in errors), pytrace=False)
        loaded = {_normalized(i.distribution) for i in manager.plugin_infos().values()}
        missing = [d for d in distributions if _normalized(d) not in loaded]
        if missing:
            pytest.fail(
                f"no installed distribution {', '.join(map(repr, missing))} has an entry point in the 'cookbook' group: "
                "is the package installed (pip install -e .) and its [project.entry-points.cookbook] declared?",
                pytrace=False,
            )

    yield load_only
    manager.reset()


def _normalized(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


# -- renderers ------------------------------------------------------------------------
def _conversations(conversations: Any) -> tuple[list[Conversation], list[str] | None]:
    from cookbook_cli.conversations import Conversation, load_conversations, parse_conversation

    if conversations is None:
        from cookbook_cli.renderers.check_conversations import builtin_conversations

        names, convs = builtin_conversations()
        return list(convs), list(names)
    if isinstance(conversations, (str, Path)):
        return load_conversations(conversations), None
    out: list[Conversation] = []
    for i, c in enumerate(conversations):
        if isinstance(c, Conversation):
            out.append(c)
        elif isinstance(c, Mapping):
            out.append(parse_conversation(dict(c), f"conversations[{i}]"))
        else:  # a bare list of messages
            out.append(parse_conversation({"messages": list(c)}, f"conversations[{i}]"))
    return out, None


def assert_renderer_matches_template(
    renderer: str | Renderer,
    tokenizer: str | Path | Tokenizer | None = None,
    conversations: Any = None,
    *,
    template: str | Path | None = None,
    allow_documented: bool = True,
    documented: Collection[str] | None = None,
    skipped: Collection[str] | None = None,
) -> CheckReport:
    """Assert that `renderer` produces exactly the tokens of a chat template, as
    `cookbook renderers check` does, and return the report.

    - `renderer`: a registered name (with `tokenizer`) or a Renderer object.
    - `tokenizer`: a tokenizer.json, a folder holding one (with its
      tokenizer_config.json and chat_template.jinja), a Hub id, or a Tokenizer.
    - `conversations`: a JSONL conversation file, a list of conversations
      (`{"messages": [...]}` dicts, bare message lists or Conversation
      objects), or None for cookbook's built-in set (unicode, multi-turn,
      system prompts, tools, thinking, ...; those the renderer refuses are
      skipped).
    - `template`: the Jinja source or a .jinja file; default the tokenizer's own.
    - `allow_documented`: whether differences the renderer documents pass
      (each one is a transformation of the template side, in
      `Renderer.template_differences`, after which the tokens must be equal);
      False makes them fail too.
    - `documented`, `skipped`: when given, the exact names of the conversations
      (as the report names them: the built-in names, or "conversation N") that
      may have a documented difference, resp. a refused comparison; any other
      set fails. Pin them, so a new refusal or an excuse that spreads is seen.

    Fails with the check's report (the first differing token of each mismatch,
    with decoded context) when a comparison mismatches or errs, or nothing was
    compared.
    """
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.renderers.check import DOCUMENTED, SKIPPED, check_renderer

    if isinstance(renderer, str):
        if tokenizer is None:
            raise TypeError("assert_renderer_matches_template(name, tokenizer, ...) needs the tokenizer for a renderer name")
        renderer = get_renderer(renderer, str(tokenizer) if isinstance(tokenizer, Path) else tokenizer)
    convs, names = _conversations(conversations)
    template_source = ""
    if isinstance(template, Path) or (isinstance(template, str) and "\n" not in template and Path(template).is_file()):
        template_source = str(template)
        template = Path(template).read_text(encoding="utf-8")
    report = check_renderer(renderer, convs, template, names=names, template_source=template_source)
    report.assert_ok()
    if not allow_documented and report.cases(DOCUMENTED):
        raise AssertionError(
            f"{len(report.cases(DOCUMENTED))} conversation(s) with a documented difference and allow_documented=False:\n"
            + report.format(verbose=True)
        )
    for status, expected in ((DOCUMENTED, documented), (SKIPPED, skipped)):
        if expected is None:
            continue
        actual = report.cases(status)
        if actual != set(expected):
            raise AssertionError(
                f"conversations with a {status} comparison are not the pinned ones: "
                f"unexpected {sorted(actual - set(expected))}, missing {sorted(set(expected) - actual)}\n"
                + report.format(verbose=True)
            )
    return report


# -- a small local engine ------------------------------------------------------------
@dataclass
class SmallLocalEngine:
    """A randomly initialised model of a named shape on the local engine.

    `base_model` is `random:<shape>:<tokenizer>`: its vocabulary is the
    tokenizer's, so any renderer over that tokenizer gives valid input. Clients
    are made on demand; the sampling client is shared."""

    tokenizer_name: str = ""  # default: tiny_tokenizer_path()
    shape: str = "tiny"
    seed: int = 0
    checkpoint_dir: str | None = None
    _service: Any = field(default=None, repr=False)
    _sampling: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.tokenizer_name:
            self.tokenizer_name = str(tiny_tokenizer_path())

    @property
    def base_model(self) -> str:
        return f"random:{self.shape}:{self.tokenizer_name}"

    @property
    def service(self) -> ServiceClient:
        if self._service is None:
            from cookbook_cli.engines import create_service_client

            self._service = create_service_client("local", device="cpu", checkpoint_dir=self.checkpoint_dir)
        return self._service

    @property
    def tokenizer(self) -> Tokenizer:
        from cookbook_cli.tokenizers import get_tokenizer

        return get_tokenizer(self.tokenizer_name)

    def renderer(self, name: str = DEFAULT_RENDERER) -> Renderer:
        from cookbook_cli.renderers import get_renderer

        return get_renderer(name, self.tokenizer)

    def training_client(self, rank: int = 4) -> TrainingClient:
        """A fresh LoRA training client over the base model (the same weights each time)."""
        return self.service.create_lora_training_client(self.base_model, rank=rank, seed=self.seed)

    def sampling_client(self) -> SamplingClient:
        if self._sampling is None:
            self._sampling = self.service.create_sampling_client(base_model=self.base_model)
        return self._sampling

    def close(self) -> None:
        if self._service is not None and hasattr(self._service, "close"):
            self._service.close()
        self._service = self._sampling = None


def small_local_engine(tokenizer: str = "", shape: str = "tiny", seed: int = 0, checkpoint_dir: str | None = None) -> SmallLocalEngine:
    """A `SmallLocalEngine` outside pytest, or with another tokenizer (a path,
    `llama3`, a Hub id; default the tiny one) or shape (tiny, small, medium)."""
    return SmallLocalEngine(tokenizer, shape, seed, checkpoint_dir)


@pytest.fixture(scope="session")
def cookbook_local_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallLocalEngine]:
    """A tiny random model over `tiny_tokenizer_path()` on the local engine, on
    CPU, offline; needs `cookbook-cli[local]` (torch). Its `renderer()` is
    `role_colon` unless named. Checkpoints go to a temporary folder."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("the local engine needs torch: pip install 'cookbook-cli[local]'")
    engine = small_local_engine(checkpoint_dir=str(tmp_path_factory.mktemp("cookbook-local-engine")))
    try:
        yield engine
    finally:
        engine.close()


# -- environments -----------------------------------------------------------------------
def reply_tokens(renderer: Renderer, text: str, stop: bool = True) -> list[int]:
    """The tokens a model would sample to reply `text`: followed by the
    renderer's (first) stop sequence when `stop`, else cut off without one."""
    stops = list(renderer.get_stop_sequences())
    if not stop or not stops:
        return renderer.tokenizer.encode(text)
    if isinstance(stops[0], str):
        return renderer.tokenizer.encode(text + stops[0])
    return renderer.tokenizer.encode(text) + [int(stops[0])]


def _fail(name: str, what: str) -> AssertionError:
    return AssertionError(f"env {name!r}: {what}")


def _check_stop(stop: Any, vocab_size: int, allow_empty: bool) -> None:
    if isinstance(stop, (str, bytes)) or not isinstance(stop, (list, tuple)):
        raise AssertionError(f"a stop condition must be a list of token ids or of strings, got {stop!r}")
    if not stop and not allow_empty:
        raise AssertionError(
            "the stop condition is empty, so every response runs to max_tokens; "
            "return renderer.get_stop_sequences() (or pass allow_empty_stop=True)"
        )
    if all(isinstance(s, int) and not isinstance(s, bool) for s in stop):
        bad = [s for s in stop if not 0 <= s < vocab_size]
        if bad:
            raise AssertionError(f"stop token ids {bad} are outside the vocabulary (size {vocab_size})")
    elif all(isinstance(s, str) for s in stop):
        if any(not s for s in stop):
            raise AssertionError("a stop string is empty")
    else:
        raise AssertionError(f"a stop condition mixes token ids and strings, or holds something else: {stop!r}")


def _check_observation(ob: Any, vocab_size: int) -> None:
    from tinker.types import ModelInput

    if not isinstance(ob, ModelInput):
        raise AssertionError(f"an observation must be a tinker.types.ModelInput, got {type(ob).__name__}")
    tokens = ob.to_ints()
    if not tokens:
        raise AssertionError("the observation is empty; the model has nothing to continue")
    bad = [t for t in tokens if not 0 <= t < vocab_size]
    if bad:
        raise AssertionError(f"observation token ids {bad[:5]} are outside the vocabulary (size {vocab_size})")


def _check_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AssertionError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise AssertionError(f"{what} is not finite: {value!r}")
    return float(value)


def _checked_builder(builder: Any, vocab_size: int, max_steps: int, allow_empty_stop: bool) -> Any:
    """`builder` wrapped so that each env's observations, stop conditions and
    step results are validated as the rollout runs (a failed validation is an
    error of that env, reported with where it happened)."""
    from cookbook_cli.rl.types import Env, EnvGroupBuilder, StepResult

    class CheckedEnv(Env):
        def __init__(self, inner: Env) -> None:
            self.inner = inner
            self.steps = 0

        async def initial_observation(self) -> Any:
            result = await self.inner.initial_observation()
            if not (isinstance(result, tuple) and len(result) == 2):
                raise AssertionError(f"initial_observation must return (ModelInput, stop condition), got {result!r}")
            _check_observation(result[0], vocab_size)
            _check_stop(result[1], vocab_size, allow_empty_stop)
            return result

        async def step(self, action: list[int]) -> Any:
            self.steps += 1
            if self.steps > max_steps:
                raise AssertionError(f"the episode did not end within {max_steps} steps (pass max_steps= for longer episodes)")
            result = await self.inner.step(action)
            if not isinstance(result, StepResult):
                raise AssertionError(f"step must return a StepResult, got {type(result).__name__}")
            _check_number(result.reward, "the reward")
            if not isinstance(result.episode_done, bool):
                raise AssertionError(f"episode_done must be a bool, got {result.episode_done!r}")
            for k, v in result.metrics.items():
                _check_number(v, f"metric {k!r}")
            if not result.episode_done:
                _check_observation(result.next_observation, vocab_size)
                _check_stop(result.next_stop_condition, vocab_size, allow_empty_stop)
            return result

    class CheckedGroupBuilder(EnvGroupBuilder):
        def __init__(self) -> None:
            self.env_name = builder.env_name

        async def make_envs(self) -> Any:
            envs = list(await builder.make_envs())
            if not envs:
                raise AssertionError("make_envs returned no envs")
            for e in envs:
                if not isinstance(e, Env):
                    raise AssertionError(f"make_envs must return Env objects, got {type(e).__name__}")
            return [CheckedEnv(e) for e in envs]

        async def compute_group_rewards(self, trajectories: Any, envs: Any) -> Any:
            out = await builder.compute_group_rewards(trajectories, [e.inner for e in envs])
            for reward, metrics in out:
                _check_number(reward, "a group reward")
                for k, v in metrics.items():
                    _check_number(v, f"group metric {k!r}")
            return out

        def logging_tags(self) -> list[str]:
            return builder.logging_tags()

        async def cleanup(self) -> None:
            await builder.cleanup()

    return CheckedGroupBuilder()


def check_env(
    name: str,
    engine: SmallLocalEngine | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    renderer: str = DEFAULT_RENDERER,
    groups: int = 2,
    group_size: int = 2,
    max_tokens: int | None = None,
    max_steps: int = 16,
    reward_range: tuple[float, float] | None = None,
    allow_empty_stop: bool = False,
    seed: int = 0,
) -> list[TrajectoryGroup]:
    """Build the registered environment `name` (with chz `options`, as
    `env.FIELD=VALUE` would), run `groups` groups of `group_size` rollouts with
    `engine`'s model (default: a fresh tiny random one) and check them. Returns
    the trajectory groups for further assertions.

    Checked: the builder is a chz RLDatasetBuilder; its dataset has batches of
    EnvGroupBuilders whose `env_name` is `name` and which pickle (what rollout
    workers need); every observation is a non-empty ModelInput of valid token
    ids; every stop condition is a non-empty list of valid token ids or of
    strings; rewards and metrics are finite numbers (within `reward_range`,
    when given, for each episode's total); every episode ends within
    `max_steps` steps; no env raises. `max_tokens` defaults to the builder's
    `default_max_tokens`, capped at 32 to keep smoke tests fast.
    """
    import asyncio
    import pickle

    from cookbook_cli.completers import SamplingClientCompleter
    from cookbook_cli.rl.envs import get_env_builder_class
    from cookbook_cli.rl.rollouts import do_group_rollout
    from cookbook_cli.rl.types import EnvContext, EnvGroupBuilder

    own_engine = engine is None
    engine = engine or small_local_engine()
    try:
        cls = get_env_builder_class(name)
        builder = cls(**dict(options or {}))
        tokenizer = engine.tokenizer
        ctx = EnvContext(
            env_name=name,
            renderer=engine.renderer(renderer),
            tokenizer=tokenizer,
            group_size=group_size,
            groups_per_batch=groups,
            seed=seed,
        )
        made = builder(ctx)
        if not (isinstance(made, tuple) and len(made) == 2):
            raise _fail(name, f"calling the builder must return (train dataset, test dataset or None), got {made!r}")
        train, _test = made
        if len(train) < 1:
            raise _fail(name, "the training dataset has no batches")
        batch = list(train.get_batch(0))
        if not batch:
            raise _fail(name, "batch 0 holds no group builders")
        for b in batch:
            if not isinstance(b, EnvGroupBuilder):
                raise _fail(name, f"a batch must hold EnvGroupBuilder objects, got {type(b).__name__}")
            if b.env_name != name:
                raise _fail(
                    name,
                    f"its group builders have env_name {b.env_name!r}: set it to ctx.env_name so they pickle by "
                    "registry name and worker processes load the plugin",
                )
        try:
            restored = pickle.loads(pickle.dumps(batch[0]))
        except Exception as e:  # noqa: BLE001 - any pickling failure is the finding
            raise _fail(name, f"a group builder does not pickle ({type(e).__name__}: {e}); rollout workers need it to") from e
        if type(restored) is not type(batch[0]):
            raise _fail(name, f"a group builder unpickles as {type(restored).__name__}, not {type(batch[0]).__name__}")
        max_tokens = max_tokens or min(int(getattr(builder, "default_max_tokens", 32)), 32)
        completer = SamplingClientCompleter(engine.sampling_client(), max_tokens=max_tokens)
        vocab_size = tokenizer.vocab_size
        checked = [_checked_builder(b, vocab_size, max_steps, allow_empty_stop) for b in batch[:groups]]

        async def run() -> list[Any]:
            return list(await asyncio.gather(*(do_group_rollout(b, completer) for b in checked)))

        rollouts = asyncio.run(run())
    finally:
        if own_engine:
            engine.close()
    errors = [f"{e.where}: {e.error_type}: {e.message}" for r in rollouts for e in r.errors]
    if errors:
        raise _fail(name, f"{len(errors)} episode(s) failed:\n  " + "\n  ".join(errors))
    out: list[TrajectoryGroup] = []
    for r in rollouts:
        if r.group is None or not r.group.trajectories:
            raise _fail(name, "a group finished with no trajectories")
        for traj in r.group.trajectories:
            if not traj.transitions or not traj.transitions[-1].episode_done:
                raise _fail(name, "an episode ended without episode_done=True")
        if reward_range is not None:
            lo, hi = reward_range
            for total in r.group.total_rewards():
                if not lo <= total <= hi:
                    raise _fail(name, f"an episode's total reward {total} is outside reward_range {reward_range}")
        out.append(r.group)
    return out


# -- losses -----------------------------------------------------------------------------
SMOKE_CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}],
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue, like the sky."}],
]


def smoke_data(engine: SmallLocalEngine, renderer: str = DEFAULT_RENDERER) -> list[tinker.types.Datum]:
    """Two short conversations as next-token Datums with `weights` (1 on the
    answer), `advantages` (+1 for the first datum, -1 for the second, on the
    answer tokens) and `logprobs` (-1.0 per token, standing in for a sampler's),
    so supervised and RL-style losses can both run on them."""
    from tinker.types import Datum, TensorData

    from cookbook_cli.data.datum import datum_from_tokens_weights

    r = engine.renderer(renderer)
    out = []
    for i, messages in enumerate(SMOKE_CONVERSATIONS):
        tokens, weights = r.build_supervised_tokens(messages)  # type: ignore[arg-type]
        d = datum_from_tokens_weights(tokens, weights)
        w = d.loss_fn_inputs["weights"].data
        sign = 1.0 if i % 2 == 0 else -1.0
        inputs = dict(d.loss_fn_inputs)
        inputs["advantages"] = TensorData(data=[sign * x for x in w], dtype="float32", shape=[len(w)])
        inputs["logprobs"] = TensorData(data=[-1.0] * len(w), dtype="float32", shape=[len(w)])
        out.append(Datum(model_input=d.model_input, loss_fn_inputs=inputs))
    return out


def _zeroed(data: Sequence[tinker.types.Datum]) -> list[tinker.types.Datum]:
    from tinker.types import Datum, TensorData

    out = []
    for d in data:
        inputs = dict(d.loss_fn_inputs)
        for key in ("weights", "advantages"):
            if key in inputs:
                n = len(inputs[key].data)
                inputs[key] = TensorData(data=[0.0] * n, dtype="float32", shape=[n])
        out.append(Datum(model_input=d.model_input, loss_fn_inputs=inputs))
    return out


def check_loss(
    name: str,
    engine: SmallLocalEngine | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    data: Sequence[tinker.types.Datum] | None = None,
    learning_rate: float = 1e-2,
) -> tinker.types.ForwardBackwardOutput:
    """Run the registered loss `name` (with `config`, as `loss_fn_config`) on
    `data` (default: `smoke_data`) with `engine`'s model, the way recipes run
    it, take one optimizer step, and check: every metric is a finite number,
    and the step changed the model's logprobs (the loss has a gradient). With
    the default data it also checks the loss still runs on a batch with
    nothing to learn (every weight and advantage zero: what RL produces when
    all episodes earned the same reward). Returns the forward-backward output."""
    from tinker.types import AdamParams

    from cookbook_cli.engines.losses import forward_backward_with_loss

    own_engine = engine is None
    engine = engine or small_local_engine()
    try:
        default_data = data is None
        data = list(data) if data is not None else smoke_data(engine)
        tc = engine.training_client()
        out = forward_backward_with_loss(tc, data, name, config).result()
        for k, v in out.metrics.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise AssertionError(f"loss {name!r}: metric {k!r} is not a finite number: {v!r}")
        before = [o["logprobs"].data for o in out.loss_fn_outputs]
        tc.optim_step(AdamParams(learning_rate=learning_rate)).result()
        after_out = tc.forward(data, "cross_entropy").result()
        after = [o["logprobs"].data for o in after_out.loss_fn_outputs]
        if all(math.isclose(a, b, rel_tol=0, abs_tol=1e-7) for x, y in zip(before, after) for a, b in zip(x, y)):
            raise AssertionError(
                f"loss {name!r}: one optimizer step left every logprob unchanged; "
                "the loss has no gradient with respect to the logprobs it was given"
            )
        if default_data:
            idle_data = _zeroed(data)
            hint = (
                f"loss {name!r} fails on a batch with nothing to learn (every weight and advantage zero, as when "
                "all episodes earn the same reward): {}. Keep the loss connected to the "
                "logprobs, e.g. start the sum from (logprobs * 0).sum()"
            )
            try:
                idle = forward_backward_with_loss(tc, idle_data, name, config).result()
            except Exception as e:  # noqa: BLE001 - the finding is that it raises
                raise AssertionError(hint.format(f"{type(e).__name__}: {e}")) from e
            _check_stays_connected(name, config, idle_data, hint)
            for k, v in idle.metrics.items():
                if not (isinstance(v, (int, float)) and math.isfinite(v)):
                    raise AssertionError(f"loss {name!r}: on a batch with nothing to learn, metric {k!r} is {v!r}")
        return out
    finally:
        if own_engine:
            engine.close()


def _check_stays_connected(name: str, config: Mapping[str, Any] | None, data: Sequence[Any], hint: str) -> None:
    """The local engine accepts a loss that is constant in the logprobs (a zero
    step), but Tinker's client back-propagates it and would raise: check the
    loss itself, so a plugin loss works on every engine."""
    import torch

    from cookbook_cli.engines.losses import get_custom_loss
    from cookbook_cli.plugins import registry

    if registry.loss_functions.get(name).extra.get("builtin"):
        return
    leaves = [torch.zeros(len(d.loss_fn_inputs["target_tokens"].data), requires_grad=True) for d in data]
    loss, _ = get_custom_loss(name, config)(list(data), leaves)
    if not loss.requires_grad:
        raise AssertionError(hint.format("the loss it returns does not depend on the logprobs, so Tinker cannot back-propagate it"))


# -- supervised datasets -------------------------------------------------------------------
def check_dataset(
    name: str,
    *,
    options: Mapping[str, Any] | None = None,
    renderer: str = DEFAULT_RENDERER,
    tokenizer: str = "",
    batch_size: int = 2,
    max_length: int | None = None,
    train_on_what: str = "last_assistant_message",
) -> tuple[Any, Any]:
    """Build the registered dataset `name` (with chz `options`, as
    `dataset.FIELD=VALUE` would) with `renderer` over `tokenizer` (default
    the tiny one) and check its first batch:
    `batch_size` Datums with target tokens, weights of the same length and at
    least one trained token. Returns (train dataset, test dataset or None)."""
    from cookbook_cli.plugins import registry
    from cookbook_cli.renderers import get_renderer

    entry = registry.dataset_builders.get(name)
    builder = entry.obj(**dict(options or {}))
    train, test = builder.build(get_renderer(renderer, tokenizer or str(tiny_tokenizer_path())), batch_size, max_length, train_on_what, seed=0)
    if len(train) < 1:
        raise AssertionError(f"dataset {name!r}: the training set has no batches of {batch_size}")
    batch = train.build_batch(0)
    datums = batch.datums
    if len(datums) != batch_size:
        why = f" ({batch.stats.skipped} example(s) had nothing to train on under train_on_what={train_on_what})" if batch.stats.skipped else ""
        raise AssertionError(f"dataset {name!r}: batch 0 holds {len(datums)} datums, expected {batch_size}{why}")
    trained = 0
    for i, d in enumerate(datums):
        targets = d.loss_fn_inputs["target_tokens"].data
        weights = d.loss_fn_inputs["weights"].data
        if len(targets) != len(weights) or len(targets) != d.model_input.length:
            raise AssertionError(f"dataset {name!r}: datum {i} has misaligned model input, targets and weights")
        trained += sum(1 for w in weights if w > 0)
    if trained == 0:
        raise AssertionError(f"dataset {name!r}: batch 0 has no trained tokens under train_on_what={train_on_what}")
    return train, test
