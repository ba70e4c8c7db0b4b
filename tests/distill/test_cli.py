"""`cookbook train distill`: options and config words, defaults taken from a
teacher run, and bad input refused in one line before any model loads."""

from __future__ import annotations

import json

import pytest
from distill_helpers import fake_teacher_run, prompt, write_jsonl
from typer.testing import CliRunner

from cookbook_cli.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def one_line_error(result, *fragments):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for f in fragments:
        assert f in lines[0], lines[0]


def test_dry_run_takes_the_student_from_the_teacher_run(tmp_path, toy_model, prompt_file):
    teacher = fake_teacher_run(tmp_path / "teacher", toy_model, "role_colon")
    result = invoke(
        "train", "distill", "--teacher", str(teacher), "--prompts", str(prompt_file), "--max-steps-off-policy", "1",
        "--kl-coef", "0.5", "--dry-run", "kl_discount=0.9", "prompts.test_size=2",
    )
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.output)
    (t,) = cfg["teachers"]
    assert t["model"] == str(teacher) and t["prompts"] == {"name": "prompt_file", "path": str(prompt_file), "test_size": 2.0}
    assert cfg["model"] == toy_model and cfg["renderer"] == "role_colon"  # a fresh copy of the teacher's base model
    assert cfg["mode"] == "on_policy" and cfg["max_steps_off_policy"] == 1
    assert cfg["kl_coef"] == 0.5 and cfg["kl_discount"] == 0.9 and cfg["max_tokens"] == 64
    assert cfg["log_dir"].startswith("runs/distill-teacher-tiny-")


def test_more_teachers_with_weights_and_an_env(toy_model):
    result = invoke(
        "train", "distill", "--teacher", "random:tiny:llama3", "--env", "arithmetic", "--dry-run", "env.max_operand=9",
        "teachers.1.model=random:small:llama3", "teachers.1.weight=0.25", "teachers.1.prompts=conversations",
    )
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.output)
    a, b = cfg["teachers"]
    assert a["env"]["name"] == "arithmetic" and a["env"]["max_operand"] == 9 and a["weight"] == 1.0
    assert b["model"] == "random:small:llama3" and b["weight"] == 0.25 and b["prompts"]["name"] == "conversations"
    assert cfg["model"].startswith("random:tiny:") and cfg["renderer"] == "llama3"  # the engine's default student


def test_off_policy_dry_run_reads_a_dataset():
    result = invoke("train", "distill", "--teacher", "random:tiny:llama3", "--mode", "off_policy", "--topk", "5", "--dry-run")
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.output)
    assert cfg["mode"] == "off_policy" and cfg["topk"] == 5 and cfg["teachers"][0]["prompts"]["name"] == "conversations"


@pytest.mark.parametrize(
    ("args", "mode"),
    [
        ([], "off_policy"),  # a random student learns from the teacher's top-K, not from its own near-uniform samples
        (["--mode", "on_policy"], "on_policy"),
        (["--env", "arithmetic"], "on_policy"),  # an env's problems have no replies to train on
        (["teachers.1.model=random:tiny:llama3"], "on_policy"),
    ],
)
def test_the_default_mode_follows_the_student_and_the_data(args, mode):
    result = invoke("train", "distill", "--teacher", "random:tiny:llama3", "--dry-run", *args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mode"] == mode


def test_a_pretrained_student_defaults_to_on_policy(tmp_path, toy_model):
    import shutil

    from cookbook_cli.rl.toy_tokenizer import toy_tokenizer_path

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "vocab_size": 34}))
    shutil.copy(toy_tokenizer_path(), tmp_path / "tokenizer.json")
    result = invoke("train", "distill", "--teacher", toy_model, "--model", str(tmp_path), "--renderer", "role_colon", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mode"] == "on_policy"


def test_a_teacher_whose_vocabulary_differs_is_refused(tmp_path, toy_model, prompt_file):
    result = invoke(
        "train", "distill", "--teacher", "random:tiny:llama3", "--model", toy_model, "--renderer", "role_colon",
        "--prompts", str(prompt_file), "--log-dir", str(tmp_path / "run"), "--groups-per-batch", "2",
    )
    one_line_error(result, "teacher 'random:tiny:llama3' has another vocabulary than the student", "128256 tokens", "--teacher-renderer")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--mode", "off_policy"], ("off-policy distillation trains on the teacher's top-K token ids",)),
        (["--env", "first_token"], ("env 'first_token' gives token observations", "cannot be re-rendered")),
    ],
    ids=["off_policy", "env"],
)
def test_a_teacher_with_other_tokens_is_refused_where_it_cannot_be_rerendered(tmp_path, toy_model, extra, fragments):
    result = invoke("train", "distill", "--teacher", "random:tiny:llama3", "--model", toy_model, "--renderer", "role_colon",
                    "--teacher-renderer", "role_colon", "--log-dir", str(tmp_path / "run"), *extra)
    one_line_error(result, *fragments)


def test_a_teacher_that_cannot_spell_the_students_text_is_refused(tmp_path, toy_model):
    # the toy tokenizer has no capitals or digits: a llama3 student's text is lost on it
    prompts = write_jsonl(tmp_path / "p.jsonl", [prompt("What is 2 plus 2?"), prompt("Name a colour.")])
    result = invoke("train", "distill", "--teacher", toy_model, "--teacher-renderer", "role_colon", "--model", "random:tiny:llama3",
                    "--prompts", str(prompts), "--groups-per-batch", "2", "--log-dir", str(tmp_path / "run"))
    one_line_error(result, f"teacher {toy_model!r} with renderer 'role_colon' cannot grade", "not in the teacher's tokens")


@pytest.mark.parametrize(
    ("teacher", "fragment"),
    [
        ("./no/such/run", "teacher './no/such/run' does not exist"),
        ("runs/missing-sft", "teacher 'runs/missing-sft' does not exist"),
    ],
)
def test_a_teacher_path_that_does_not_exist(teacher, fragment):
    one_line_error(invoke("train", "distill", "--teacher", teacher, "--dry-run"), fragment, "runs/... directory")


def test_an_unfinished_teacher_run_is_refused(tmp_path, toy_model):
    teacher = fake_teacher_run(tmp_path / "teacher", toy_model, "role_colon")
    (teacher / "checkpoints.jsonl").write_text("")
    one_line_error(invoke("train", "distill", "--teacher", str(teacher), "--dry-run"), "has no final sampler weights")


def test_a_teacher_run_of_another_engine_is_refused(tmp_path, toy_model):
    teacher = fake_teacher_run(tmp_path / "teacher", "meta-llama/Llama-3.2-1B", "llama3", engine="tinker")
    one_line_error(invoke("train", "distill", "--teacher", str(teacher), "--dry-run"), "trained on engine 'tinker'", "--engine tinker")


def test_an_empty_prompt_file(tmp_path, toy_model):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = invoke("train", "distill", "--teacher", toy_model, "--prompts", str(empty), "--log-dir", str(tmp_path / "run"))
    one_line_error(result, f"prompt file {str(empty)!r} holds no prompts")


def test_a_prompt_that_ends_with_an_assistant_turn(tmp_path, toy_model):
    rows = [prompt("hi"), {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    result = invoke("train", "distill", "--teacher", toy_model, "--prompts", str(path), "--log-dir", str(tmp_path / "run"))
    one_line_error(result, f"{path}:2: the conversation already ends with an assistant turn", "--dataset")


def test_a_prompt_file_that_does_not_exist(tmp_path, toy_model):
    result = invoke("train", "distill", "--teacher", toy_model, "--prompts", str(tmp_path / "nope.jsonl"), "--log-dir", str(tmp_path / "r"))
    one_line_error(result, "nope.jsonl' does not exist")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--prompts", "a.jsonl", "--env", "arithmetic"], "--prompts and --env both name the prompts"),
        (["--mode", "offpolicy"], "unknown distillation mode 'offpolicy'. Did you mean 'off_policy'"),
        (["kl_discount=1.5"], "kl_discount must be in [0, 1)"),
        (["--group-size", "1", "env_reward_coef=1"], "group_size=1 adds nothing"),
        (["teachers.1.model=random:tiny:llama3", "teachers.1.weight=0.01", "--groups-per-batch", "4"], "gets 0 of the 4 groups"),
        (["--mode", "off_policy", "teachers.1.model=random:tiny:llama3"], "off-policy distillation takes one teacher"),
        (["--loss", "ppx"], "unknown loss function 'ppx'"),
    ],
)
def test_bad_options_are_one_line(tmp_path, args, fragment):
    result = invoke("train", "distill", "--teacher", "random:tiny:llama3", "--log-dir", str(tmp_path / "run"), *args)
    one_line_error(result, fragment)


def test_help_lists_the_config_words():
    result = invoke("train", "distill", "--help")
    assert result.exit_code == 0
    for word in ("--teacher", "--teacher-renderer", "--prompts", "--env", "--mode", "kl_discount", "teachers", "topk"):
        assert word in result.output
