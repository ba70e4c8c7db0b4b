"""The sl training loop against the engine stand-in: call order, pipelining,
metrics, checkpoints, resume and the log-directory rules."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from sl_helpers import conv, write_jsonl

from cookbook_cli.errors import CookbookError
from cookbook_cli.optim import learning_rate_at
from cookbook_cli.recipes.sl import SLConfig, train
from cookbook_cli.engines.standin import StandInService
from cookbook_cli.run.options import RunOptions


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", [conv(f"question {i}?", f"answer {i}. " * (1 + i % 4)) for i in range(26)])


def config(tmp_path: Path, data: Path, **kw) -> SLConfig:
    from cookbook_cli.data.builders import ConversationsBuilder

    args = dict(log_dir=str(tmp_path / "run"), batch_size=4, eval_every=2, save_every=2, max_steps=5)
    args.update(kw)
    return SLConfig(dataset=ConversationsBuilder(path=str(data), test_size=6), **args)


class Failing(StandInService):
    """Raises inside the n-th forward_backward, like a process dying mid-step."""

    def __init__(self, fail_at: int, **kw) -> None:
        super().__init__(**kw)
        self.fail_at = fail_at
        self.fb_calls = 0

    def submit(self, name, fn):
        if name == "forward_backward":
            self.fb_calls += 1
            if self.fb_calls == self.fail_at:
                def boom():
                    raise RuntimeError("engine died")
                return super().submit(name, boom)
        return super().submit(name, fn)


def run(cfg: SLConfig, service: StandInService | None = None, **kw):
    service = service or StandInService(latency=0.0)
    return train(cfg, RunOptions(service=service, progress=False, on_log=lambda m: None, **kw)), service


def metrics(log_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]


def checkpoints(log_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (log_dir / "checkpoints.jsonl").read_text().splitlines()]


def test_calls_are_submitted_in_the_documented_order(tmp_path, data):
    result, service = run(config(tmp_path, data, max_steps=4))
    evals = ["forward"] * 2  # 6 test conversations in batches of 4
    assert service.calls == [
        *evals, "forward_backward", "optim_step",  # step 0: evaluation before its update
        "forward_backward", "optim_step", "save_state",  # step 1, then the checkpoint after 2 steps
        *evals, "forward_backward", "optim_step",
        "forward_backward", "optim_step",
        *evals, "save_state", "save_weights_for_sampler",  # final evaluation and checkpoint
    ]
    assert result.total_steps == 4 and result.final_checkpoint["final"] is True


def test_next_step_is_submitted_before_the_previous_one_completes(tmp_path, data):
    """forward_backward and optim_step go back to back, and the next batch is
    built and submitted while the engine still works on the current one: an
    engine computing one call at a time always has the next step queued."""
    events: list[tuple[str, str, float]] = []

    class Recording(StandInService):
        def submit(self, name, fn):
            events.append(("submit", name, time.monotonic()))

            def wrapped():
                out = fn()
                events.append(("done", name, time.monotonic()))
                return out

            return super().submit(name, wrapped)

    run(config(tmp_path, data, max_steps=3, eval_every=0, save_every=0), Recording(latency=0.1, mode="serial"))
    fb_submits = [t for kind, name, t in events if kind == "submit" and name == "forward_backward"]
    opt_done = [t for kind, name, t in events if kind == "done" and name == "optim_step"]
    assert len(fb_submits) == 3 and len(opt_done) == 3
    for s in range(2):
        assert fb_submits[s + 1] < opt_done[s], f"step {s + 1} waited for step {s}"


def test_sequential_mode_computes_the_same_metrics(tmp_path, data):
    a, _ = run(config(tmp_path / "a", data))
    b, service = run(config(tmp_path / "b", data, pipeline=False))
    keys = ("step", "loss", "lr", "tokens", "loss_tokens", "test_nll")
    assert [{k: r.get(k) for k in keys} for r in metrics(a.log_dir)] == [{k: r.get(k) for k in keys} for r in metrics(b.log_dir)]


def test_metrics_rows_hold_the_documented_fields(tmp_path, data):
    result, service = run(config(tmp_path, data, max_steps=5, lr_schedule="cosine", warmup_steps=1, learning_rate=0.1))
    rows = metrics(result.log_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4, 5]  # five steps, then the final evaluation
    for r in rows[:5]:
        assert {"loss", "lr", "tokens", "tokens_per_s", "step_time", "loss_tokens", "truncated", "epoch", "batch"} <= set(r)
        assert r["lr"] == pytest.approx(learning_rate_at(r["step"], 5, 0.1, "cosine", 1))
    assert [r["step"] for r in rows if "test_nll" in r] == [0, 2, 4, 5]
    assert rows[-1]["final"] is True and "loss" not in rows[-1]
    # The stand-in gives every target token logprob -log(vocab) * decay**updates: a step's loss is
    # the per-token NLL of its own forward_backward, after the updates before it (none left out,
    # none counted twice), and an evaluation sees the weights before its step's update.
    per_token = lambda step: math.log(service.vocab_size) * service.decay**step  # noqa: E731
    assert [r["loss"] for r in rows[:5]] == pytest.approx([per_token(s) for s in range(5)], rel=1e-6)
    assert [r["test_nll"] for r in rows if "test_nll" in r] == pytest.approx([per_token(s) for s in (0, 2, 4, 5)], rel=1e-6)


def test_checkpoints_record_step_epoch_and_batch(tmp_path, data):
    # 20 training rows / 4 = 5 batches per epoch; 2 epochs = 10 steps.
    result, _ = run(config(tmp_path, data, max_steps=None, epochs=2, save_every=3, eval_every=0))
    records = checkpoints(result.log_dir)
    assert [(c["step"], c["epoch"], c["batch"], c["final"]) for c in records] == [
        (3, 0, 3, False), (6, 1, 1, False), (9, 1, 4, False), (10, 2, 0, True),
    ]
    assert records[-1]["sampler_path"].startswith("standin://sampler/")


def test_epochs_reshuffle_and_cover_every_row(tmp_path, data):
    result, service = run(config(tmp_path, data, max_steps=None, epochs=2, eval_every=0, save_every=0))
    rows = [row for row in metrics(result.log_dir) if "loss" in row]
    assert [(r["epoch"], r["batch"]) for r in rows] == [(e, b) for e in range(2) for b in range(5)]
    seen = service.last_client.examples_seen  # per step: the target tokens of each example
    epoch0 = [ex for step in seen[:5] for ex in step]
    epoch1 = [ex for step in seen[5:] for ex in step]
    assert len(epoch0) == len(set(epoch0)) == 20  # every training row once per epoch
    assert sorted(epoch0) == sorted(epoch1) and epoch0 != epoch1  # same rows, another order


def test_truncation_is_counted_in_metrics(tmp_path, data):
    # Every example is 20 tokens or more, with the answer from token 14 on.
    result, _ = run(config(tmp_path, data, max_length=16, max_steps=2, eval_every=0))
    rows = [r for r in metrics(result.log_dir) if "loss" in r]
    assert [(r["truncated"], r["tokens"], r["examples"]) for r in rows] == [(4, 4 * 15, 4)] * 2
    assert result.truncated == 8


def test_resume_after_a_crash_repeats_nothing_and_keeps_the_data_order(tmp_path, data):
    full, full_service = run(config(tmp_path / "full", data, max_steps=9, epochs=3, save_every=2, eval_every=3))
    reference = metrics(full.log_dir)

    cfg = config(tmp_path / "crash", data, max_steps=9, epochs=3, save_every=2, eval_every=3)
    crashing = Failing(fail_at=6, latency=0.0)  # dies in step 5: the last checkpoint is after step 4
    with pytest.raises(RuntimeError, match="engine died"):
        run(cfg, crashing)
    assert [c["step"] for c in checkpoints(Path(cfg.log_dir))] == [2, 4]

    with pytest.raises(CookbookError, match="--if-exists resume or --if-exists overwrite"):
        run(cfg, StandInService(latency=0.0), if_exists="fail")
    resumed_service = StandInService(latency=0.0)
    resumed_service.states = crashing.states  # the engine's saved states outlive the process
    resumed, _ = run(cfg, resumed_service, if_exists="resume")
    assert resumed.resumed_from == 4
    rows = metrics(Path(cfg.log_dir))
    assert [r["step"] for r in rows] == list(range(10))  # every step exactly once, then the final row
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("tokens_per_s", "step_time", "elapsed")} for r in rs]  # noqa: E731
    assert strip(rows) == strip(reference)
    # The resumed client trained on exactly the batches the uninterrupted one did from step 4 on.
    full_client_batches = full_service.last_client.examples_seen
    assert resumed_service.last_client.examples_seen == full_client_batches[4:]


def test_resume_of_a_finished_run_trains_nothing_more(tmp_path, data):
    cfg = config(tmp_path, data, max_steps=3)
    first, service = run(cfg)
    again_service = StandInService(latency=0.0)
    again_service.states = service.states
    again, _ = run(cfg, again_service, if_exists="resume")
    assert again.start_step == 3
    assert {k: v for k, v in again.final_checkpoint.items() if k != "time"} == first.final_checkpoint
    assert "forward_backward" not in again_service.calls
    assert [r["step"] for r in metrics(Path(cfg.log_dir))] == [0, 1, 2, 3]


def test_resume_with_other_settings_is_refused(tmp_path, data):
    cfg = config(tmp_path, data, max_steps=3)
    run(cfg)
    changed = config(tmp_path, data, max_steps=3, batch_size=2)
    with pytest.raises(CookbookError, match=r"other settings \(batch_size: 4 -> 2\).*--if-exists overwrite"):
        run(changed, if_exists="resume")
    result, _ = run(changed, if_exists="overwrite")
    assert result.start_step == 0 and [c["step"] for c in checkpoints(result.log_dir)] == [2, 3]


def test_a_log_dir_that_is_a_file_is_refused_before_any_work(tmp_path, data):
    target = tmp_path / "run"
    target.write_text("not a directory")
    service = StandInService(latency=0.0)
    with pytest.raises(CookbookError, match="is a file; choose another --log-dir"):
        run(config(tmp_path, data), service)
    assert service.calls == []


def test_a_batch_with_nothing_to_train_is_a_step_without_an_update(tmp_path):
    long_question = "a long question " * 20  # the answer starts past max_length
    rows = [conv(long_question if i % 2 else "short?", f"answer {i}") for i in range(12)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    result, service = run(config(tmp_path, data, batch_size=1, max_length=24, max_steps=6, eval_every=0, save_every=0))
    steps = [r for r in metrics(result.log_dir) if not r.get("final")]
    assert len(steps) == 6
    skipped = [r for r in steps if r.get("no_update")]
    assert skipped and all("loss" not in r and r["skipped"] == 1 and r["truncated"] == 1 for r in skipped)
    assert service.calls.count("forward_backward") == service.calls.count("optim_step") == 6 - len(skipped)


@pytest.mark.parametrize("answer, outcome", [("r", "resumed"), ("o", "overwritten"), ("f", "failed")])
def test_on_a_terminal_an_existing_run_is_a_question(tmp_path, data, monkeypatch, answer, outcome):
    import sys

    import typer

    cfg = config(tmp_path, data, max_steps=2)
    _, first = run(cfg)
    again = StandInService(latency=0.0)
    again.states = first.states
    monkeypatch.setattr(sys, "stdin", type("Tty", (), {"isatty": lambda self: True})())
    asked = []
    monkeypatch.setattr(typer, "prompt", lambda text, **kw: asked.append(text) or answer)
    if outcome == "failed":
        with pytest.raises(CookbookError, match="already holds a run"):
            run(cfg, again, if_exists="ask")
    else:
        result, _ = run(cfg, again, if_exists="ask")
        assert result.start_step == (2 if outcome == "resumed" else 0)
    assert len(asked) == 1 and "[r]esume, [o]verwrite or [f]ail" in asked[0]
