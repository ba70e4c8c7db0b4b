"""The fan-out the run lifecycle holds: a plugin logger gets the config, every
step, checkpoints, transcripts and the close; failures drop one logger with
one warning; names and options are checked before anything is written; a
resumed run gives each step to a tracker once."""

from __future__ import annotations

import json
import math

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.loggers import STATE_FILE, open_loggers, parse_log_to, redact_options, split_logger_args, validate_logger_names


def _open(run_dir, names, options=None, resuming=False, config=None):
    warnings: list[str] = []
    loggers = open_loggers(names, options or {}, run_dir, config or {"lr": 0.1}, resuming, warnings.append)
    return loggers, warnings


def test_plugin_logger_gets_config_every_step_checkpoint_html_and_close(recorder, tmp_path):
    (tmp_path / "transcripts").mkdir()
    (tmp_path / "transcripts" / "step_000001.html").write_text("<p>hi</p>")
    config = {"lr": 0.1, "engine": {"api_key": "sk-not-for-trackers"}, "model": "m"}
    loggers, warnings = _open(tmp_path, ["rec"], {"rec": {"project": "p"}}, config=config)
    for step in range(3):
        loggers.log_metrics(step, {"loss": 1.0 / (step + 1)})
    loggers.log_html("transcripts", "transcripts/step_000001.html", 1)
    loggers.log_checkpoint({"step": 3, "name": "step-000003", "state_path": "x"})
    loggers.close()
    loggers.close()  # idempotent
    assert warnings == []
    calls = recorder.calls["rec"]
    assert calls[0] == ("open", {"lr": 0.1, "engine": {"api_key": "***"}, "model": "m"}, False, {"project": "p"}, {})
    assert calls[1:] == [
        ("metrics", 0, {"loss": 1.0}),
        ("metrics", 1, {"loss": 0.5}),
        ("metrics", 2, {"loss": 1.0 / 3}),
        ("html", "transcripts", "<p>hi</p>", 1),
        ("checkpoint", {"step": 3, "name": "step-000003", "state_path": "x"}),
        ("close", "finished"),
    ]
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["rec"] == {"state": {"opened": 1}, "last_step": 2}
    assert loggers.written_paths() == [tmp_path.joinpath(STATE_FILE).relative_to(tmp_path)]


def test_close_reports_how_the_run_ended(recorder, tmp_path):
    for error, status in [(None, "finished"), (RuntimeError("x"), "failed"), (KeyboardInterrupt(), "killed")]:
        loggers, _ = _open(tmp_path, ["rec"])
        loggers.close(error)
        assert recorder.calls["rec"][-1] == ("close", status)
    with pytest.raises(ValueError), _open(tmp_path, ["rec"])[0]:
        raise ValueError("boom")
    assert recorder.calls["rec"][-1] == ("close", "failed")


def test_a_failing_logger_is_warned_once_and_dropped(recorder, tmp_path):
    loggers, warnings = _open(tmp_path, ["broken_open", "broken_step", "rec"])
    for step in range(3):
        loggers.log_metrics(step, {"loss": 1.0})
    loggers.close()
    assert loggers.names == []
    assert len(warnings) == 2, warnings
    assert "logger 'broken_open' (plugin recorder-plugin, register_loggers) failed to open" in warnings[0] and "ConnectionError: network is unreachable" in warnings[0]
    assert "'broken_step' failed in log_metrics and was dropped; the run continues with rec" in warnings[1]
    assert all("\n" not in w for w in warnings)
    assert [c[1] for c in recorder.calls["rec"] if c[0] == "metrics"] == [0, 1, 2]
    assert recorder.calls["broken_step"][-1] == ("close", "failed")  # closed when dropped, not again at the end
    assert sum(c[0] == "close" for c in recorder.calls["broken_step"]) == 1


def test_a_missing_package_is_one_warning_and_the_run_goes_on(recorder, tmp_path):
    loggers, warnings = _open(tmp_path, ["needs_pkg", "rec"])
    loggers.log_metrics(0, {"loss": 1.0})
    loggers.close()
    assert warnings == [
        "logger 'needs_pkg' is not available: no_such_module_xyz is not installed (pip install 'cookbook-cli[nothere]'); "
        "the run continues without it"
    ]
    assert recorder.calls["needs_pkg"] == []
    assert ("metrics", 0, {"loss": 1.0}) in recorder.calls["rec"]


def test_secrets_never_reach_a_warning(recorder, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123")

    class Leaky:
        def log_metrics(self, step, metrics):
            raise PermissionError("key 0123456789abcdef0123 was refused")

    loggers, warnings = _open(tmp_path, ["rec"], config={"note": "uses 0123456789abcdef0123"})
    assert recorder.calls["rec"][0][1] == {"note": "uses ***"}  # a secret under an innocent key is scrubbed too
    loggers._open[0].obj = Leaky()
    loggers.log_metrics(0, {"loss": 1.0})
    assert len(warnings) == 1 and "0123456789abcdef0123" not in warnings[0] and "key *** was refused" in warnings[0]


def test_resume_gives_each_step_once_and_keeps_state(recorder, tmp_path):
    loggers, _ = _open(tmp_path, ["rec"])
    for step in range(6):
        loggers.log_metrics(step, {"loss": float(step)})
    # killed: no close. Resume from the checkpoint at step 3: steps 3..5 are computed again.
    loggers, _ = _open(tmp_path, ["rec", "rec2"], resuming=True)
    for step in range(3, 8):
        loggers.log_metrics(step, {"loss": float(step)})
    loggers.log_html("t", tmp_path / STATE_FILE, 4)  # already held by rec: skipped for it
    loggers.close()
    opens = [c for c in recorder.calls["rec"] if c[0] == "open"]
    assert opens[1][2] is True and opens[1][4] == {"opened": 1}  # the state saved by the first process
    assert [c[1] for c in recorder.calls["rec"] if c[0] == "metrics"] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert [c[1] for c in recorder.calls["rec2"] if c[0] == "metrics"] == [3, 4, 5, 6, 7]  # new on resume: gets all
    assert not any(c[0] == "html" for c in recorder.calls["rec"]) and any(c[0] == "html" for c in recorder.calls["rec2"])
    # A run that starts over (not resuming) forgets the old state.
    _open(tmp_path, ["rec"])[0].close()
    assert recorder.calls["rec"][-2][4] == {}


def test_no_loggers_write_nothing(tmp_path):
    loggers, warnings = _open(tmp_path, [])
    loggers.log_metrics(0, {"loss": math.nan})
    loggers.close()
    assert warnings == [] and list(tmp_path.iterdir()) == [] and loggers.written_paths() == []


def test_names_and_options_are_checked_before_anything_is_written(recorder, tmp_path):
    with pytest.raises(CookbookError, match=r"unknown logger 'wandbb'. Did you mean 'wandb'\?.*cookbook loggers list"):
        open_loggers(["wandbb"], {}, tmp_path, {}, False, print)
    with pytest.raises(CookbookError, match=r"unknown option logger.rec.projet: logger 'rec' takes project"):
        validate_logger_names(["rec"], {"rec": {"projet": "x"}})
    with pytest.raises(CookbookError, match=r"logger 'rec2' takes \(it takes no options\)"):
        validate_logger_names(["rec2"], {"rec2": {"x": "1"}})
    with pytest.raises(CookbookError, match=r"--log-to does not name 'rec': add --log-to rec"):
        validate_logger_names(["rec2"], {"rec": {"project": "x"}})
    with pytest.raises(CookbookError, match=r"logger.wandb.mode='onlin' is not one of online, offline, disabled"):
        validate_logger_names(["wandb"], {"wandb": {"mode": "onlin"}})
    assert list(tmp_path.iterdir()) == []
    validate_logger_names(["rec", "wandb", "tensorboard", "mlflow"], {"rec": {"project": "x"}, "wandb": {"mode": "offline"}})


def test_command_line_words():
    assert parse_log_to("wandb, tensorboard,,wandb") == ["wandb", "tensorboard"]
    assert parse_log_to(["wandb", "mlflow,tensorboard"]) == ["wandb", "mlflow", "tensorboard"]
    assert parse_log_to(None) == []
    rest, options = split_logger_args(["lr=1e-4", "logger.wandb.project=p", "logger.wandb.tags=a,b", "logger.mlflow.run_name=x=y"])
    assert rest == ["lr=1e-4"]
    assert options == {"wandb": {"project": "p", "tags": "a,b"}, "mlflow": {"run_name": "x=y"}}
    for bad in ["logger.wandb=p", "logger.wandb.project", "logger..x=1", "logger.a.b.c=1"]:
        with pytest.raises(CookbookError, match=r"logger.<name>.<field>=<value>"):
            split_logger_args([bad])


def test_options_recorded_in_config_lose_their_secrets():
    options = {"mlflow": {"tracking_uri": "https://me:hunter2@mlflow.example.com/"}, "x": {"api_key": "k", "project": "p"}}
    assert redact_options(options) == {
        "mlflow": {"tracking_uri": "https://***@mlflow.example.com/"},
        "x": {"api_key": "***", "project": "p"},
    }
