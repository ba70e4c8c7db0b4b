"""The recipe pieces shared by sl and rl: chz config plumbing, defaults,
checkpoint records and resume positions."""

from __future__ import annotations

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.config import config_differences, config_to_json, make_config
from cookbook_cli.engines import create_service_for_run
from cookbook_cli.models import resolve_model_and_renderer
from cookbook_cli.run.checkpoints import Checkpointer, Position, resume_position
from cookbook_cli.recipes.sl import SLConfig


def test_words_override_options_and_reach_nested_fields():
    cfg = make_config(SLConfig, {"batch_size": 4, "learning_rate": None, "epochs": 2}, ["batch_size=16", "adam.beta1=0.8", "engine_options.device=cpu"])
    assert (cfg.batch_size, cfg.learning_rate, cfg.epochs, cfg.adam.beta1) == (16, None, 2, 0.8)
    assert cfg.engine_options == {"device": "cpu"}


def test_registry_fields_are_chosen_by_name_and_recorded_by_name():
    cfg = make_config(SLConfig, {}, ["dataset=hf", "dataset.path=some/dataset", "dataset.test_split=validation"])
    as_json = config_to_json(cfg, {"dataset": __import__("cookbook_cli.plugins.registry", fromlist=["x"]).dataset_builders})
    assert as_json["dataset"]["name"] == "hf" and as_json["dataset"]["test_split"] == "validation"
    assert as_json["adam"] == {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.0, "grad_clip_norm": 0.0}


def test_config_errors_are_one_line():
    for words, text in [(["batch_size=many"], "Could not cast 'many' to int"), (["nope=1"], "unknown config field 'nope'")]:
        with pytest.raises(CookbookError, match=text) as e:
            make_config(SLConfig, {}, words)
        assert "\n" not in str(e.value)


def test_config_differences_name_each_changed_leaf():
    old = {"a": 1, "adam": {"beta1": 0.9, "eps": 1e-8}, "log_dir": "x"}
    new = {"a": 2, "adam": {"beta1": 0.9, "eps": 1e-6}, "log_dir": "y", "b": True}
    assert config_differences(old, new, ignore=("log_dir",)) == ["a: 1 -> 2", "adam.eps: 1e-08 -> 1e-06", "b: '(unset)' -> True"]


def test_model_and_renderer_defaults():
    assert resolve_model_and_renderer("local", None, None) == ("random:tiny:meta-llama/Llama-3.2-1B-Instruct", "llama3")
    assert resolve_model_and_renderer("local", None, "role_colon")[0] == "random:tiny:meta-llama/Llama-3.2-1B-Instruct"
    assert resolve_model_and_renderer("tinker", None, "role_colon") == ("meta-llama/Llama-3.2-1B", "role_colon")
    assert resolve_model_and_renderer("tinker", "meta-llama/Llama-3.3-70B-Instruct", None)[1] == "llama3"
    with pytest.raises(CookbookError, match="pass --renderer"):
        resolve_model_and_renderer("local", "someone/unknown-model", None)


def test_resume_position_checks_the_record_against_the_data():
    assert resume_position(None, 10) == Position(0, 0, 0)
    assert resume_position({"step": 23, "epoch": 2, "batch": 3}, 10) == Position(23, 2, 3)
    with pytest.raises(CookbookError, match="the dataset or batch size changed"):
        resume_position({"step": 23, "epoch": 2, "batch": 3, "name": "step-000023"}, 8)


def test_checkpointer_records_only_completed_saves(tmp_path):
    from cookbook_cli.engines.standin import StandInService
    from cookbook_cli.run.directory import RunDir

    (tmp_path / "run").mkdir()
    run = RunDir(tmp_path / "run")
    client = StandInService(latency=0.0).create_lora_training_client("m")
    checkpointer = Checkpointer(run, client)
    pending = checkpointer.submit(Position(5, 1, 2))
    assert run.checkpoints() == []  # submitted, not yet recorded
    record = checkpointer.finish(pending)
    assert {k: record[k] for k in ("step", "epoch", "batch", "name", "final")} == {"step": 5, "epoch": 1, "batch": 2, "name": "step-000005", "final": False}
    final = checkpointer.save(Position(6, 1, 3), final=True)
    assert final["sampler_path"].startswith("standin://sampler/final-000006") and [c["step"] for c in run.checkpoints()] == [5, 6]


def test_create_service_gives_the_local_engine_the_run_directory(tmp_path):
    service = create_service_for_run("local", tmp_path / "run")
    try:
        assert service.checkpoint_dir == (tmp_path / "run").resolve()
    finally:
        service.close()


def test_a_registered_object_with_its_own_name_field_keeps_it():
    import chz

    from cookbook_cli.plugins.registry import Entry

    @chz.chz
    class Named:
        name: str = "mine"

    @chz.chz
    class Holder:
        thing: Named = chz.field(default_factory=Named)

    class FakeRegistry:
        def entries(self):
            return {"named": Entry("named", Named, "", "test")}

    assert config_to_json(Holder(), {"thing": FakeRegistry()}) == {"thing": {"registry_name": "named", "name": "mine"}}
