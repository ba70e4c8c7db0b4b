"""The helpers of `cookbook_cli.testing`: each passes what is right and fails,
with a message that says what to fix, on what is wrong."""

from __future__ import annotations

import functools
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import chz
import pytest

from cookbook_cli import hookimpl
from cookbook_cli.errors import CookbookError
from cookbook_cli.renderers import get_renderer
from cookbook_cli.renderers.base import RenderedMessage, Renderer
from cookbook_cli.renderers.check_conversations import builtin_conversations
from cookbook_cli.renderers.differences import ContentKeptVerbatim
from cookbook_cli.rl.problem_env import ProblemGroupBuilder, SeededProblemDataset
from cookbook_cli.rl.types import Env, EnvContext, RLDataset, RLDatasetBuilder, StepResult
from cookbook_cli.types import thinking_of
from cookbook_cli.testing import (
    assert_renderer_matches_template,
    check_dataset,
    check_env,
    check_loss,
    reply_tokens,
    tiny_tokenizer_path,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = str(tiny_tokenizer_path())


# -- renderers --------------------------------------------------------------------------
class ChatML(Renderer):
    """ChatML over the tiny tokenizer: what its chat_template.jinja writes."""

    def stop_token_ids(self):
        return [self.tokenizer.require_id("<|im_end|>")]

    def parse_response(self, tokens):
        text, termination = self.split_response(tokens)
        return {"role": "assistant", "content": text}, termination

    def render_conversation(self, messages, tools):
        return [RenderedMessage(f"<|im_start|>{m['role']}\n", f"{m['content']}<|im_end|>", "\n") for m in messages]

    def generation_header(self, messages, role, tools):
        return f"<|im_start|>{role}\n"


TOOLS_OR_THINKING = {
    name for name, c in zip(*builtin_conversations()) if c.tools or any(thinking_of(m) is not None for m in c.messages)
}


class ChatMLNoNewline(ChatML):
    """Forgets the newline after <|im_end|>."""

    def render_conversation(self, messages, tools):
        return [RenderedMessage(f"<|im_start|>{m['role']}\n", f"{m['content']}<|im_end|>") for m in messages]


class RendererPlugin:
    @hookimpl
    def register_renderers(self, register):
        register("test_chatml", ChatML, "ChatML")
        register("test_chatml_broken", ChatMLNoNewline, "ChatML without the newline")


@pytest.fixture
def renderers(cookbook_load_only, cookbook_plugin):
    cookbook_load_only()
    cookbook_plugin(RendererPlugin(), name="test-renderers")


def test_renderer_assertion_passes_a_faithful_renderer(renderers, tmp_path):
    report = assert_renderer_matches_template("test_chatml", TINY, documented=set(), skipped=TOOLS_OR_THINKING)
    assert report.ok and report.counts("supervised") == {"match": 26, "skipped": 18}  # the built-in varied set
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"messages": conv}) + "\n")
    for conversations in ([conv], [{"messages": conv}], path, str(path)):
        assert assert_renderer_matches_template("test_chatml", TINY, conversations).compared == 2
    # a renderer object, and the template given explicitly (as a file and as source)
    renderer = get_renderer("test_chatml", TINY)
    template = tiny_tokenizer_path() / "chat_template.jinja"
    assert assert_renderer_matches_template(renderer, conversations=[conv], template=template).ok
    assert assert_renderer_matches_template(renderer, conversations=[conv], template=template.read_text()).ok


def test_renderer_assertion_fails_with_the_first_difference(renderers):
    with pytest.raises(AssertionError) as e:
        assert_renderer_matches_template("test_chatml_broken", TINY, [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]])
    message = str(e.value)
    assert "mismatch" in message and "first difference at token" in message and "FAILED" in message


def test_renderer_assertion_fails_when_the_template_differs(renderers):
    other = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(AssertionError, match="first difference"):
        assert_renderer_matches_template("test_chatml", TINY, [[{"role": "user", "content": "Hi"}]], template=other)


def test_renderer_assertion_checks_the_pinned_cases(renderers):
    with pytest.raises(AssertionError, match=r"skipped comparison are not the pinned ones: unexpected \['parallel tool calls'\], missing \[\]"):
        assert_renderer_matches_template("test_chatml", TINY, skipped=TOOLS_OR_THINKING - {"parallel tool calls"})
    with pytest.raises(AssertionError, match=r"documented comparison are not the pinned ones: unexpected \[\], missing \['single turn'\]"):
        assert_renderer_matches_template("test_chatml", TINY, documented={"single turn"})


class ChatMLTrimmed(ChatML):
    """Declares that the template trims content (it does not): the declared
    transformation changes nothing, so a whitespace-edged message must match as is."""

    template_differences = (ContentKeptVerbatim(),)

    def render_conversation(self, messages, tools):
        return [RenderedMessage(r.header, r.body.replace("Trailing spaces   ", "Trailing spaces"), r.trailer) for r in super().render_conversation(messages, tools)]


def test_renderer_assertion_applies_declared_differences_strictly(renderers):
    tokenizer = get_renderer("test_chatml", TINY).tokenizer
    with pytest.raises(AssertionError, match="even with the documented difference"):
        assert_renderer_matches_template(ChatMLTrimmed(tokenizer), conversations=[[{"role": "user", "content": "Trailing spaces   "}]])


def test_renderer_assertion_needs_a_tokenizer_for_a_name(renderers):
    with pytest.raises(TypeError, match="needs the tokenizer"):
        assert_renderer_matches_template("test_chatml")


def test_reply_tokens_end_at_the_stop_sequence():
    chatml = ChatML(get_renderer("role_colon", TINY).tokenizer)
    assert chatml.tokenizer.decode(reply_tokens(chatml, "ok")) == "ok<|im_end|>"
    role_colon = get_renderer("role_colon", TINY)
    assert role_colon.tokenizer.decode(reply_tokens(role_colon, "ok")) == "ok\n\nUser:"
    assert role_colon.tokenizer.decode(reply_tokens(role_colon, "ok", stop=False)) == "ok"
    assert role_colon.parse_response(reply_tokens(role_colon, "ok"))[1].value == "stop"


# -- environments -------------------------------------------------------------------------
class ProbeEnv(Env):
    """An env whose faults are chosen by its builder's options."""

    def __init__(self, renderer, reward: float, stop: str, steps: int, fail: bool) -> None:
        self.renderer, self.reward, self.stop, self.steps, self.fail = renderer, reward, stop, steps, fail
        self.taken = 0

    def _stop(self):
        return {"default": self.renderer.get_stop_sequences(), "empty": [], "mixed": [1, "x"], "huge": [10**9]}[self.stop]

    async def initial_observation(self):
        return self.renderer.build_generation_prompt([{"role": "user", "content": "Say hi."}]), self._stop()

    async def step(self, action):
        from tinker.types import ModelInput

        if self.fail:
            raise ValueError("the env broke")
        self.taken += 1
        done = self.steps > 0 and self.taken >= self.steps
        ob = ModelInput.empty() if done else self.renderer.build_generation_prompt([{"role": "user", "content": "Again."}])
        return StepResult(reward=self.reward, episode_done=done, next_observation=ob, next_stop_condition=self._stop(), metrics={"taken": float(self.taken)})


class NamelessDataset(RLDataset):
    def __init__(self, ctx, make):
        self.ctx, self.make = ctx, make

    def __len__(self):
        return 1

    def get_batch(self, index):
        return [ProblemGroupBuilder(self.make(random.Random(j)), self.ctx.group_size) for j in range(self.ctx.groups_per_batch)]


def _probe(renderer, reward, stop, steps, fail, rng):
    return functools.partial(ProbeEnv, renderer, reward, stop, steps, fail)


@chz.chz
class ProbeBuilder(RLDatasetBuilder):
    reward: float = 1.0
    stop: str = "default"
    steps: int = 1  # 0: never ends
    fail: bool = False
    set_env_name: bool = True

    default_max_tokens = 4

    def __call__(self, ctx: EnvContext):
        make = functools.partial(_probe, ctx.renderer, self.reward, self.stop, self.steps, self.fail)
        if not self.set_env_name:
            return NamelessDataset(ctx, make), None
        return SeededProblemDataset(ctx, make, 3), None


class NotChz:  # looks like a builder to registration, but is no chz RLDatasetBuilder
    default_max_tokens = 256

    def local_defaults(self):
        return {}


class EnvPlugin:
    @hookimpl
    def register_envs(self, register):
        register("probe", ProbeBuilder, "configurable faults")
        register("not_chz", NotChz, "not a builder")


@pytest.fixture
def envs(cookbook_load_only, cookbook_plugin):
    cookbook_load_only()
    cookbook_plugin(EnvPlugin(), name="test-envs")


def test_check_env_passes_a_well_formed_env(envs, cookbook_local_engine):
    groups = check_env("probe", cookbook_local_engine, options={"steps": 2}, reward_range=(0, 2))
    assert len(groups) == 2 and all(len(g.trajectories) == 2 for g in groups)
    assert all(len(t.transitions) == 2 for g in groups for t in g.trajectories)
    assert check_env("arithmetic", cookbook_local_engine, groups=1)  # a built-in


@pytest.mark.parametrize(
    ("options", "kwargs", "message"),
    [
        ({"reward": float("nan")}, {}, "the reward is not finite"),
        ({"stop": "empty"}, {}, "the stop condition is empty"),
        ({"stop": "mixed"}, {}, "mixes token ids and strings"),
        ({"stop": "huge"}, {}, "outside the vocabulary"),
        ({"steps": 0}, {"max_steps": 3}, "did not end within 3 steps"),
        ({"fail": True}, {}, "step: ValueError: the env broke"),
        ({"set_env_name": False}, {}, "set it to ctx.env_name"),
        ({"reward": 5.0}, {"reward_range": (0.0, 1.0)}, "outside reward_range"),
    ],
)
def test_check_env_finds_faults(envs, cookbook_local_engine, options, kwargs, message):
    with pytest.raises(AssertionError, match=message) as e:
        check_env("probe", cookbook_local_engine, options=options, **kwargs)
    assert "env 'probe'" in str(e.value)


def test_check_env_allows_an_empty_stop_when_asked(envs, cookbook_local_engine):
    check_env("probe", cookbook_local_engine, options={"stop": "empty"}, allow_empty_stop=True, groups=1)


def test_check_env_rejects_what_is_not_a_builder(envs, cookbook_local_engine):
    with pytest.raises(CookbookError, match="not a chz subclass"):
        check_env("not_chz", cookbook_local_engine)


# -- losses --------------------------------------------------------------------------------
def frozen_loss(data, logprobs_list):
    """Depends on the logprobs (so it runs) but has no gradient."""
    total = sum((lp * 0.0).sum() for lp in logprobs_list)
    return total, {"frozen": 0.0}


def nan_metric_loss(data, logprobs_list):
    total = sum(-lp.sum() for lp in logprobs_list)
    return total, {"bad": float("nan")}


def scaled_loss(data, logprobs_list, scale: float = 1.0):
    total = sum(-lp.sum() for lp in logprobs_list) * scale
    return total, {"scale": scale}


def skipping_loss(data, logprobs_list):
    """Skips data with nothing to learn, and so comes loose from the logprobs on an idle batch."""
    import torch

    total = torch.zeros(())
    for datum, lp in zip(data, logprobs_list):
        adv = datum.loss_fn_inputs["advantages"].to_torch().reshape(lp.shape)
        if bool((adv != 0).any()):
            total = total + (-lp * adv).sum()
    return total, {}


class LossPlugin:
    @hookimpl
    def register_loss_functions(self, register):
        register("test_skipping", skipping_loss, "breaks on an idle batch")
        register("test_frozen", frozen_loss, "no gradient")
        register("test_nan_metric", nan_metric_loss, "reports NaN")
        register("test_scaled", scaled_loss, "config scale")


@pytest.fixture
def losses(cookbook_load_only, cookbook_plugin):
    cookbook_load_only()
    cookbook_plugin(LossPlugin(), name="test-losses")


def test_check_loss_passes_working_losses(losses, cookbook_local_engine):
    out = check_loss("test_scaled", cookbook_local_engine, config={"scale": 0.5})
    assert out.metrics["scale"] == 0.5
    check_loss("cross_entropy", cookbook_local_engine)  # a built-in, computed by the engine
    check_loss("importance_sampling", cookbook_local_engine)  # smoke data carries advantages and logprobs


def test_check_loss_finds_a_loss_without_gradient(losses, cookbook_local_engine):
    with pytest.raises(AssertionError, match="left every logprob unchanged"):
        check_loss("test_frozen", cookbook_local_engine)


def test_check_loss_finds_a_loss_that_breaks_on_a_batch_with_nothing_to_learn(losses, cookbook_local_engine):
    with pytest.raises(AssertionError, match="fails on a batch with nothing to learn"):
        check_loss("test_skipping", cookbook_local_engine)


def test_check_loss_finds_a_non_finite_metric(losses, cookbook_local_engine):
    with pytest.raises(AssertionError, match="metric 'bad' is not a finite number"):
        check_loss("test_nan_metric", cookbook_local_engine)


# -- datasets --------------------------------------------------------------------------------
def test_check_dataset(cookbook_load_only, tmp_path):
    cookbook_load_only()
    train, test = check_dataset("conversations", batch_size=4)  # the bundled sample
    assert len(train) >= 1 and test is not None
    # no message is marked trainable: the dataset build itself refuses it, saying why
    with pytest.raises(CookbookError, match=r"has nothing to train on: .* no message that train_on_what=customized trains"):
        check_dataset("conversations", train_on_what="customized")


# -- the pytest plugin itself ---------------------------------------------------------------
PLUGIN_TESTS = '''
import pytest

from cookbook_cli import hookimpl
from cookbook_cli.plugins import manager, registry


class Shout:
    @hookimpl
    def register_renderers(self, register):
        register("shout", lambda tok: None, "loud")


SHOUT = Shout()


def test_plugin_fixture_registers(cookbook_plugin):
    assert cookbook_plugin(SHOUT, name="shout") == "shout"
    assert registry.renderers.get("shout").plugin == "shout"
    # registering an object already registered leaves it be
    assert cookbook_plugin(SHOUT) == "shout"


def test_and_removes_it_after():
    assert "shout" not in registry.renderers


def test_load_only_limits_autoloading(cookbook_load_only):
    cookbook_load_only()
    assert set(manager.plugin_infos()) == {"cookbook-cli"}


def test_load_only_fails_on_a_distribution_not_installed(cookbook_load_only):
    with pytest.raises(pytest.fail.Exception, match="no installed distribution 'cookbook-nope'.*pip install -e"):
        cookbook_load_only("cookbook-nope")


def test_the_engine_fixture_is_lazy(cookbook_local_engine):
    assert cookbook_local_engine.base_model.startswith("random:tiny:")
    assert cookbook_local_engine._service is None
'''


def test_fixtures_come_with_the_pytest11_entry_point(tmp_path):
    """A plugin author's test file uses the fixtures with no conftest and no import."""
    (tmp_path / "test_plugin_fixtures.py").write_text(textwrap.dedent(PLUGIN_TESTS))
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), "COOKBOOK_LOAD_PLUGINS": ""}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "5 passed" in proc.stdout, proc.stdout + proc.stderr


def test_loading_the_pytest_plugin_imports_nothing_heavy():
    code = (
        "import sys, cookbook_cli.testing; "
        "heavy = [m for m in ('torch', 'tinker', 'transformers', 'datasets', 'chz', 'tokenizers') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
