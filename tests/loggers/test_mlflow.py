"""MLflow: the local store in <run>/mlflow holds every step's metrics, the
config (redacted) and the transcripts; a resumed run continues the same MLflow
run with each step once; any tracking URI works."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tracker_helpers import needs

from cookbook_cli.loggers import open_loggers, read_state

needs("mlflow", "sqlalchemy", "alembic", extra="mlflow")


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_local_store_holds_metrics_config_and_resumes_the_same_run(tracker_env, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "transcripts").mkdir(parents=True)
    (run_dir / "transcripts" / "step_000002.html").write_text("<p>sampled</p>")
    config = {"lr": 0.001, "model": "tiny", "engine": {"name": "local", "api_key": "sk-secret-value-1234"}}
    warnings: list[str] = []
    first = open_loggers(["mlflow"], {"mlflow": {"experiment": "cb-test"}}, run_dir, config, False, warnings.append)
    for step in range(6):
        first.log_metrics(step, {"loss": 1.0 / (step + 1), "env/reward/mean": 0.5, "final": False, "label": "x"})
    first.log_html("transcripts", "transcripts/step_000002.html", 2)
    first.log_checkpoint({"step": 3, "name": "step-000003", "state_path": "ckpt/step-000003"})
    # killed after step 5; resumed from the checkpoint at step 3, with one more setting
    resumed = open_loggers(["mlflow"], {"mlflow": {"experiment": "cb-test"}}, run_dir, {**config, "steps": 8}, True, warnings.append)
    for step in range(3, 8):
        resumed.log_metrics(step, {"loss": 1.0 / (step + 1), "grad_norm": math.nan})
    resumed.close()
    assert warnings == []
    assert resumed.written_paths() == [Path("trackers.json"), Path("mlflow")]

    state = read_state(run_dir)["mlflow"]["state"]
    client = _client(f"sqlite:///{(run_dir / 'mlflow' / 'mlflow.db').as_posix()}")
    [run] = client.search_runs([client.get_experiment_by_name("cb-test").experiment_id])
    assert run.info.run_id == state["run_id"] and run.info.run_name == "run" and run.info.status == "FINISHED"
    assert _history(client, run.info.run_id, "loss") == [(s, pytest.approx(1.0 / (s + 1))) for s in range(8)]
    assert _history(client, run.info.run_id, "env/reward/mean") == [(s, 0.5) for s in range(6)]
    assert [s for s, v in _history(client, run.info.run_id, "grad_norm")] == [6, 7]  # 3..5 were already held
    assert "label" not in run.data.metrics
    assert run.data.params == {"lr": "0.001", "model": "tiny", "engine.name": "local", "engine.api_key": "***", "steps": "8"}
    assert run.data.tags["cookbook.checkpoint"] == "step-000003"
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    assert artifacts.is_relative_to(run_dir.resolve() / "mlflow")
    assert json.loads((artifacts / "config.json").read_text())["engine"]["api_key"] == "***"
    assert (artifacts / "transcripts" / "step_000002.html").read_text() == "<p>sampled</p>"


def test_any_tracking_uri(tracker_env, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    store = tmp_path / "elsewhere" / "mlruns"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    uri = store.as_uri()
    loggers = open_loggers(["mlflow"], {"mlflow": {"tracking_uri": uri, "run_name": "named"}}, run_dir, {"lr": 1}, False, print)
    for step in range(3):
        loggers.log_metrics(step, {"loss": float(step)})
    loggers.close(RuntimeError("the run failed"))
    assert loggers.written_paths() == [Path("trackers.json")]  # nothing of MLflow's in the run directory
    client = _client(uri)
    [run] = client.search_runs([client.get_experiment_by_name("cookbook").experiment_id])
    assert (run.info.run_name, run.info.status) == ("named", "FAILED")
    assert _history(client, run.info.run_id, "loss") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert read_state(run_dir)["mlflow"]["state"]["tracking_uri"] == uri


def test_a_server_that_is_down_is_one_warning_and_the_others_go_on(tracker_env, tmp_path, recorder):
    import os
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    warnings: list[str] = []
    uri = f"http://127.0.0.1:{port}"
    loggers = open_loggers(["mlflow", "rec"], {"mlflow": {"tracking_uri": uri}}, tmp_path, {}, False, warnings.append)
    loggers.log_metrics(0, {"loss": 1.0})
    loggers.close()
    assert len(warnings) == 1 and warnings[0].startswith("logger 'mlflow' failed to open and was dropped"), warnings
    assert uri in warnings[0] and "\n" not in warnings[0]
    assert ("metrics", 0, {"loss": 1.0}) in recorder.calls["rec"]
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the bounded retries were for cookbook's calls only
