"""MLflow, through `MlflowClient` (no global active run, so nothing leaks into
the user's own MLflow calls).

Where: `logger.mlflow.tracking_uri=`, else MLFLOW_TRACKING_URI, else a local
store in the run directory (`<run>/mlflow/mlflow.db` with artifacts beside it;
view it with `mlflow ui --backend-store-uri sqlite:///<run>/mlflow/mlflow.db`).
The config is logged as params (flattened, `a.b`) and as `config.json`;
transcripts and images as artifacts; the last checkpoint as tags. The run id
is kept in trackers.json so a resumed cookbook run continues the MLflow run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cookbook_cli.loggers.base import FAILED, KILLED, Logger, LoggerContext, flatten, scalar_metrics

_BAD_KEY = re.compile(r"[^\w\-. :/]")
_PARAM_VALUE_MAX = 500  # the smallest limit of MLflow versions and servers
_BATCH = 100  # params per log_batch call


def _key(k: str) -> str:
    return _BAD_KEY.sub("_", k)[:250]


@contextlib.contextmanager
def _bounded_http(retries: int, timeout: int) -> Iterator[None]:
    """Fewer HTTP retries than MLflow's default (7, about four minutes when a
    server is down), so a tracker that is down costs a run seconds, not
    minutes. Variables the user set are left alone."""
    chosen = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries), "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout)}
    mine = {k: v for k, v in chosen.items() if k not in os.environ}
    os.environ.update(mine)
    try:
        yield
    finally:
        for k in mine:
            os.environ.pop(k, None)


def _in_run(method: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(method)
    def wrapper(*args: Any) -> None:
        with _bounded_http(retries=3, timeout=30):
            method(*args)

    return wrapper


class MlflowLogger(Logger):
    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    @_in_run
    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # Non-finite values go as they are: the store keeps NaN, and its SQL store clips inf to the float range.
        batch = [Metric(_key(k), float(v), now, int(step)) for k, v in scalar_metrics(metrics).items()]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[i : i + 1000])

    @_in_run
    def log_checkpoint(self, record: Mapping[str, Any]) -> None:
        self.client.set_tag(self.run_id, "cookbook.checkpoint", str(record.get("name", "")))
        self.client.set_tag(self.run_id, "cookbook.checkpoint_step", str(record.get("step", "")))
        if record.get("state_path"):
            self.client.set_tag(self.run_id, "cookbook.checkpoint_path", str(record["state_path"]))

    @_in_run
    def log_html(self, name: str, path: Path, step: int) -> None:
        self.client.log_artifact(self.run_id, str(path), "transcripts")

    @_in_run
    def log_image(self, name: str, path: Path, step: int) -> None:
        self.client.log_artifact(self.run_id, str(path), "images")

    @_in_run
    def close(self, status: str = "finished") -> None:
        self.client.set_terminated(self.run_id, "FAILED" if status == FAILED else "KILLED" if status == KILLED else "FINISHED")


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # created meanwhile by another run on the same server
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _log_params(client: Any, run_id: str, config: Mapping[str, Any], existing: Mapping[str, str]) -> None:
    from mlflow.entities import Param

    # Params cannot change once logged: a resumed run adds new ones only (config.json has the rest).
    values = {_key(k): str(v)[:_PARAM_VALUE_MAX] for k, v in flatten(config, sep=".")}  # a dict: keys may clash once cleaned
    params = [Param(k, v) for k, v in values.items() if k not in existing]
    for i in range(0, len(params), _BATCH):
        client.log_batch(run_id, params=params[i : i + _BATCH])


def open_mlflow(ctx: LoggerContext) -> MlflowLogger:
    o = ctx.options
    uri = o.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    artifact_location = None
    if not uri:
        missing = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
        if missing:
            raise RuntimeError(
                f"MLflow's local store needs {' and '.join(missing)} (pip install 'cookbook-cli[mlflow]'), "
                "or set logger.mlflow.tracking_uri to a server"
            )
        store = ctx.claim("mlflow")
        store.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{(store / 'mlflow.db').resolve().as_posix()}"
        artifact_location = (store / "artifacts").resolve().as_uri()
    for noisy in ("alembic", "mlflow.store.db.utils"):  # table creation logs several INFO lines
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with warnings.catch_warnings(), _bounded_http(retries=1, timeout=10):
        warnings.simplefilter("ignore")  # SQLAlchemy deprecation warnings from MLflow's own store
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        where = "run directory" if artifact_location else _display_uri(uri)  # a moved run still finds its own store
        run_id = _resume(ctx, client, where)
        if run_id is None:
            experiment = o.get("experiment") or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "cookbook"
            run = client.create_run(
                _experiment_id(client, experiment, artifact_location),
                run_name=o.get("run_name") or ctx.run_name,
                tags={"cookbook.run_dir": str(ctx.run_dir.resolve())},
            )
            run_id = run.info.run_id
            existing: Mapping[str, str] = {}
        else:
            existing = client.get_run(run_id).data.params
        ctx.state.update(run_id=run_id, tracking_uri=where)
        _log_params(client, run_id, ctx.config, existing)
        client.log_dict(run_id, dict(ctx.config), "config.json")
    return MlflowLogger(client, run_id)


def _display_uri(uri: str) -> str:
    from cookbook_cli.loggers.options import redact_options

    return redact_options({"m": {"u": uri}})["m"]["u"]


def _resume(ctx: LoggerContext, client: Any, where: str) -> str | None:
    """The saved run's id if this run resumes into the same store, reopened."""
    from mlflow.exceptions import MlflowException

    run_id = ctx.state.get("run_id")
    if not (ctx.resuming and run_id and ctx.state.get("tracking_uri") == where):
        return None
    try:
        client.update_run(run_id, status="RUNNING")
    except MlflowException as e:
        ctx.warn(f"logger 'mlflow': run {run_id} is not in {where} ({e.error_code}); starting a new MLflow run")
        return None
    return run_id
