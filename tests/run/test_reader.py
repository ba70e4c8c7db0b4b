"""The run-directory reader: what a path is (a run, inside one, neither), the
run's config, its checkpoints (newest, newest intact, final sampler weights, a
named one) and recorded paths made absolute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cookbook_cli.errors import CookbookError, UnknownNameError
from cookbook_cli.run.checkpoints import sha256_of
from cookbook_cli.run.reader import RunReader, run_containing


def record(run: Path, step: int, final: bool = False, sampler: bool = False) -> dict:
    """A checkpoint written and recorded as the Checkpointer does it (files with their sha256)."""
    name = f"final-{step:06d}" if final else f"step-{step:06d}"
    rec: dict = {"step": step, "epoch": 0, "batch": step, "name": name, "final": final, "state_path": f"weights/{name}"}
    folders = ["weights"] + (["sampler_weights"] if sampler else [])
    if sampler:
        rec["sampler_path"] = f"sampler_weights/{name}"
    files = {}
    for kind in folders:
        f = run / kind / name / "weights.safetensors"
        f.parent.mkdir(parents=True)
        f.write_bytes(f"{kind} {step}".encode())
        files[f.relative_to(run).as_posix()] = sha256_of(f)
    rec["files"] = files
    return rec


def make_run(path: Path, *records_of: tuple[int, bool, bool], config: dict | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config or {"engine": "local", "model": "m", "renderer": "role_colon"}))
    (path / "cookbook-run.json").write_text(json.dumps({"format": "cookbook-run/1", "entries": ["config.json"]}))
    rows = [record(path, step, final, sampler) for step, final, sampler in records_of]
    (path / "checkpoints.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def no_notice(message: str) -> None:
    raise AssertionError(f"unexpected notice: {message}")


def test_a_run_its_config_and_its_checkpoints(tmp_path):
    run = make_run(tmp_path / "run", (2, False, False), (4, False, False), (5, True, True))
    reader = RunReader.open(run)
    assert reader.config()["model"] == "m" and reader.base_model() == "m"
    assert [r["step"] for r in reader.records()] == [2, 4, 5]
    assert reader.latest()["name"] == "final-000005"
    records, i = reader.latest_intact(no_notice)
    assert i == 2 and records[i]["name"] == "final-000005"
    final = reader.final_sampler()
    assert final is not None and reader.path_of(final, "sampler_path") == str((run / "sampler_weights/final-000005").resolve())
    assert reader.path_of(final, "state_path") == str((run / "weights/final-000005").resolve())


def test_a_checkpoint_named_by_name_step_or_path(tmp_path):
    run = make_run(tmp_path / "run", (2, False, False), (4, False, False), (5, True, True))
    reader = RunReader(run)
    assert reader.checkpoint()["step"] == 5
    assert reader.checkpoint("step-000002")["step"] == 2
    assert reader.checkpoint("4")["step"] == 4
    assert reader.checkpoint(str(run / "weights" / "step-000004"))["step"] == 4
    assert reader.checkpoint(str(run / "sampler_weights" / "final-000005"))["step"] == 5
    with pytest.raises(UnknownNameError, match="step-000009"):
        reader.checkpoint("step-000009")


def test_damaged_checkpoints_are_passed_over_with_a_notice(tmp_path):
    run = make_run(tmp_path / "run", (2, False, False), (4, False, False), (6, False, False))
    (run / "weights/step-000006/weights.safetensors").write_bytes(b"torn")
    (run / "weights/step-000004/weights.safetensors").unlink()
    notices: list[str] = []
    records, i = RunReader(run).latest_intact(notices.append)
    assert i == 0 and records[i]["name"] == "step-000002"
    assert notices == [
        "Checkpoint step-000006 is damaged (weights/step-000006/weights.safetensors fails its checksum); trying step-000004",
        "Checkpoint step-000004 is damaged (weights/step-000004/weights.safetensors is missing); trying step-000002",
    ]
    (run / "weights/step-000002/weights.safetensors").write_bytes(b"")
    with pytest.raises(CookbookError, match=r"no intact checkpoint is left .* \(3 recorded, all damaged\)"):
        RunReader(run).latest_intact(notices.append)


def test_a_run_without_checkpoints(tmp_path):
    reader = RunReader(make_run(tmp_path / "run"))
    assert reader.records() == [] and reader.latest() is None and reader.final_sampler() is None
    assert reader.latest_intact(no_notice) == ([], None)
    with pytest.raises(CookbookError, match="recorded no checkpoint yet"):
        reader.checkpoint()


def test_a_row_that_is_no_checkpoint_record_is_an_error(tmp_path):
    run = make_run(tmp_path / "run", (2, False, False))
    with (run / "checkpoints.jsonl").open("a") as f:
        f.write(json.dumps({"step": "three"}) + "\n")
    with pytest.raises(CookbookError, match=r"checkpoints.jsonl:2 is not a checkpoint record \(step 'three' is not a count\)"):
        RunReader(run).latest_intact(no_notice)


def test_an_unfinished_run_has_no_final_sampler_weights(tmp_path):
    assert RunReader(make_run(tmp_path / "run", (2, False, False), (4, True, False))).final_sampler() is None


def test_a_path_inside_a_run_finds_it(tmp_path):
    run = make_run(tmp_path / "run", (2, False, False))
    inside = run / "weights" / "step-000002"
    assert run_containing(inside) == run and run_containing(run) == run
    assert RunReader.at(inside) is None and RunReader.at(run) is not None
    assert run_containing(tmp_path) is None


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "holds no cookbook run"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("mine")), "holds no cookbook run"),
    ],
)
def test_not_a_run(tmp_path, setup, message):
    path = tmp_path / "folder"
    setup(path)
    assert RunReader.at(path) is None
    with pytest.raises(CookbookError, match=message):
        RunReader.open(path)


def test_a_config_that_names_no_model(tmp_path):
    run = make_run(tmp_path / "run", (2, False, False), config={"engine": "local"})
    assert RunReader(run).stored_config() == {"engine": "local"}
    with pytest.raises(CookbookError, match="names no model and engine"):
        RunReader(run).config()
    (run / "config.json").unlink()
    assert RunReader(run).stored_config() == {}
    with pytest.raises(CookbookError, match="has no config.json; it cannot say which model it trained"):
        RunReader(run).config()
