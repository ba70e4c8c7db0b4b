"""`train sl` draws the same batches as tinker-cookbook.

The fixture tinker_cookbook_batches.json was written by
scripts/tinker_cookbook_batches.py running tinker-cookbook's own
`FromConversationFileBuilder` and its supervised loop's `set_epoch`/`get_batch`
(its `generator` field holds the command and versions). Here cookbook's public
API, `train()` and the CLI must produce exactly those datums: tokens, targets,
weights (mean reduction) and test set. The live test regenerates such a file
for random cases when a tinker-cookbook interpreter is at hand
(COOKBOOK_TCB_PYTHON, default /work/tcb-venv/bin/python).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURE = HERE / "tinker_cookbook_batches.json"
SCRIPT = REPO / "scripts" / "tinker_cookbook_batches.py"

sys.path.insert(0, str(HERE))
import parity_conversations  # noqa: E402
from cookbook_cli.run.options import RunOptions


def load_fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def case_id(case: dict[str, Any]) -> str:
    return f"{Path(case['file']).stem}-bs{case['batch_size']}-test{case['test_size']}-seed{case['shuffle_seed']}"


FIXTURE_CASES = load_fixture()["cases"]


@pytest.fixture(scope="module")
def renderer(shared_tokenizers: Path) -> Any:
    from cookbook_cli.renderers import get_renderer

    return get_renderer(load_fixture()["renderer"], str(shared_tokenizers / load_fixture()["tokenizer"]))


def as_record(datum: Any) -> dict[str, list]:
    inputs = datum.loss_fn_inputs
    return {
        "model_input": [int(t) for t in datum.model_input.to_ints()],
        "targets": [int(t) for t in np.asarray(inputs["target_tokens"].to_numpy()).reshape(-1)],
        "weights": np.asarray(inputs["weights"].to_numpy(), dtype=np.float32).reshape(-1).tolist(),
    }


def assert_same_datum(ours: dict[str, list], theirs: dict[str, list], where: str) -> None:
    assert ours["model_input"] == theirs["model_input"], f"{where}: model_input tokens differ"
    assert ours["targets"] == theirs["targets"], f"{where}: target tokens differ"
    np.testing.assert_allclose(
        np.asarray(ours["weights"], dtype=np.float32), np.asarray(theirs["weights"], dtype=np.float32), rtol=2e-7, atol=0, err_msg=where
    )


def build(case: dict[str, Any], renderer: Any, root: Path, loss_reduction: str = "mean") -> tuple[Any, Any]:
    from cookbook_cli.data.builders import ConversationsBuilder

    path = Path(case["file"])
    builder = ConversationsBuilder(path=str(path if path.is_absolute() else root / path), test_size=case["test_size"])
    return builder.build(renderer, case["batch_size"], None, "all_assistant_messages", case["shuffle_seed"], loss_reduction=loss_reduction)


def drawn_batches(train_ds: Any, epochs: int, per_epoch: int) -> list[list[list[dict[str, list]]]]:
    """Batches in the order recipes/sl.py draws them: set_epoch(e), then get_batch(i)."""
    out = []
    for epoch in range(epochs):
        train_ds.set_epoch(epoch)
        out.append([[as_record(d) for d in train_ds.get_batch(i)] for i in range(per_epoch)])
    return out


def held_out_records(test_ds: Any) -> list[dict[str, list]] | None:
    if test_ds is None:
        return None
    return [as_record(d) for b in test_ds.all_batches() for d in b.datums]


def check_case(case: dict[str, Any], table: list[dict[str, list]], epochs: int, renderer: Any, root: Path) -> None:
    """cookbook's datasets for `case` give tinker-cookbook's datums, batch by batch."""
    name = case_id(case)
    train_ds, test_ds = build(case, renderer, root)
    assert len(train_ds) == case["batches_per_epoch"], name
    per_epoch = len(case["epochs"][0])
    ours = drawn_batches(train_ds, epochs, per_epoch)
    for e, (our_epoch, their_epoch) in enumerate(zip(ours, case["epochs"], strict=True)):
        for b, (our_batch, their_ids) in enumerate(zip(our_epoch, their_epoch, strict=True)):
            assert len(our_batch) == len(their_ids), f"{name} epoch {e} batch {b}"
            for k, (datum, tid) in enumerate(zip(our_batch, their_ids)):
                assert_same_datum(datum, table[tid], f"{name} epoch {e} batch {b} datum {k}")
    our_test = held_out_records(test_ds)
    if case["test"] is None:
        assert our_test is None, f"{name}: cookbook held out a test set, tinker-cookbook none"
    else:
        assert our_test is not None and len(our_test) == len(case["test"]), f"{name}: test set size"
        for k, (datum, tid) in enumerate(zip(our_test, case["test"])):
            assert_same_datum(datum, table[tid], f"{name} test datum {k}")

    bos = renderer.tokenizer.bos_token_id
    assert bos is not None
    for batch in ours[0] + [our_test or []]:
        for datum in batch:
            assert datum["model_input"].count(bos) == 1 and datum["model_input"][0] == bos, f"{name}: one BOS, first"

    # loss_reduction="sum": the same tokens, each example's weights not divided by their sum.
    sum_train, sum_test = build(case, renderer, root, loss_reduction="sum")
    summed = drawn_batches(sum_train, 1, per_epoch)[0]
    for b, (mean_batch, sum_batch) in enumerate(zip(ours[0], summed, strict=True)):
        for mean_d, sum_d in zip(mean_batch, sum_batch, strict=True):
            assert (sum_d["model_input"], sum_d["targets"]) == (mean_d["model_input"], mean_d["targets"])
            w_sum = np.asarray(sum_d["weights"], dtype=np.float64)
            assert set(np.unique(w_sum)) <= {0.0, 1.0}, f"{name} batch {b}: sum-reduced weights are the raw 0/1 mask"
            np.testing.assert_allclose(np.asarray(mean_d["weights"]) * w_sum.sum(), w_sum, rtol=1e-6, atol=1e-7)
    assert (held_out_records(sum_test) is None) == (our_test is None)


# -- the committed fixture -------------------------------------------------------------------


def test_the_fixture_is_what_its_generator_says() -> None:
    fixture = load_fixture()
    gen = fixture["generator"]
    assert gen["tinker_cookbook"] == "0.5.8" and gen["command"].startswith("python scripts/tinker_cookbook_batches.py")
    assert fixture["reduction"] == "mean" and fixture["train_on_what"] == "all_assistant_messages"
    assert len(fixture["datums"]) >= 3 and {c["batch_size"] for c in FIXTURE_CASES} >= {1, 3, 8}
    assert {c["test_size"] > 0 for c in FIXTURE_CASES} == {True, False}
    for name in parity_conversations.COMMITTED:  # the generated files are reproducible
        rows = [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines()]
        assert rows == parity_conversations.committed_rows(name), name


@pytest.mark.parametrize("case", FIXTURE_CASES, ids=case_id)
def test_cookbook_draws_tinker_cookbooks_batches(case: dict[str, Any], renderer: Any) -> None:
    fixture = load_fixture()
    check_case(case, fixture["datums"][case["file"]], fixture["epochs"], renderer, REPO)


def test_train_sends_those_batches_to_the_engine(tmp_path: Path, renderer: Any) -> None:
    """`train()` itself: the datums each step hands to forward_backward, over two
    epochs, and the test datums it evaluates, are tinker-cookbook's."""
    from cookbook_cli.data.builders import ConversationsBuilder
    from cookbook_cli.engines.standin import StandInService
    from cookbook_cli.recipes.sl import SLConfig, train

    fixture = load_fixture()
    case = next(c for c in FIXTURE_CASES if c["test_size"] > 0 and c["batch_size"] == 3)
    table = fixture["datums"][case["file"]]

    class Recording(StandInService):
        def __init__(self) -> None:
            super().__init__(latency=0.0)
            self.trained: list[list[Any]] = []
            self.evaluated: list[list[Any]] = []

        def create_lora_training_client(self, *args: Any, **kw: Any) -> Any:
            client = super().create_lora_training_client(*args, **kw)
            fb, fwd = client.forward_backward, client.forward
            client.forward_backward = lambda data, *a, **k: (self.trained.append(list(data)), fb(data, *a, **k))[1]
            client.forward = lambda data, *a, **k: (self.evaluated.append(list(data)), fwd(data, *a, **k))[1]
            return client

    service = Recording()
    cfg = SLConfig(
        dataset=ConversationsBuilder(path=str(REPO / case["file"]), test_size=case["test_size"]),
        renderer=fixture["renderer"], log_dir=str(tmp_path / "run"), batch_size=case["batch_size"],
        epochs=2, seed=case["shuffle_seed"], eval_every=0, save_every=0, max_length=None,
    )
    train(cfg, RunOptions(service=service, progress=False, on_log=lambda m: None))
    n = case["batches_per_epoch"]
    assert len(service.trained) == 2 * n
    for e, epoch in enumerate(case["epochs"]):
        for b, ids in enumerate(epoch):
            sent = service.trained[e * n + b]
            assert len(sent) == len(ids)
            for k, (datum, tid) in enumerate(zip(sent, ids)):
                assert_same_datum(as_record(datum), table[tid], f"step {e * n + b} datum {k}")
    evaluated = [as_record(d) for batch in service.evaluated for d in batch]  # the final evaluation
    assert len(evaluated) == len(case["test"])
    for k, (datum, tid) in enumerate(zip(evaluated, case["test"])):
        assert_same_datum(datum, table[tid], f"test datum {k}")


def test_the_cli_trains_on_those_batches(tmp_path: Path, shared_tokenizers: Path) -> None:
    """`cookbook train sl` on the local engine (tiny random Llama): each step's
    logged examples, input tokens and trained tokens are those of
    tinker-cookbook's batch for that step."""
    sys.path.insert(0, str(REPO / "tests" / "sl"))
    from sl_helpers import run_cli

    fixture = load_fixture()
    case = next(c for c in FIXTURE_CASES if c["test_size"] == 0 and len(c["epochs"][0]) == c["batches_per_epoch"])
    table = fixture["datums"][case["file"]]
    log_dir = tmp_path / "run"
    proc = run_cli([
        "train", "sl", "--renderer", fixture["renderer"], "--dataset", str(REPO / case["file"]), "--log-dir", str(log_dir),
        "--batch-size", str(case["batch_size"]), "--epochs", "2", "--eval-every", "0", "--save-every", "0",
        f"seed={case['shuffle_seed']}", "dataset.test_size=0",
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((log_dir / "config.json").read_text())["loss_reduction"] == "mean"
    steps = [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines() if "loss" in json.loads(line)]
    expected = []
    for e, epoch in enumerate(case["epochs"]):
        for b, ids in enumerate(epoch):
            datums = [table[i] for i in ids]
            expected.append({
                "epoch": e, "batch": b, "examples": len(datums),
                "tokens": sum(len(d["model_input"]) for d in datums),
                "loss_tokens": sum(sum(1 for w in d["weights"] if w > 0) for d in datums),
            })
    assert [{k: r[k] for k in expected[0]} for r in steps] == expected


# -- live: tinker-cookbook itself on random files ---------------------------------------------


def tcb_python() -> str | None:
    explicit = os.environ.get("COOKBOOK_TCB_PYTHON")
    candidate = explicit or "/work/tcb-venv/bin/python"
    if not Path(candidate).is_file():
        return None
    probe = subprocess.run([candidate, "-c", "import tinker_cookbook"], capture_output=True, timeout=120)
    return candidate if probe.returncode == 0 else None


def test_live_against_tinker_cookbook(tmp_path: Path, shared_tokenizers: Path, renderer: Any) -> None:
    python = tcb_python()
    if python is None:
        pytest.skip("tinker-cookbook not available (set COOKBOOK_TCB_PYTHON to a python that imports tinker_cookbook)")
    rng = random.Random(1616)
    cases = []
    for k in range(6):
        bs = rng.randint(1, 7)
        test = rng.randint(0, 5)
        rows = rng.randint(max(5, test + bs), 60)
        path = parity_conversations.write(tmp_path / f"live{k}.jsonl", parity_conversations.conversations(rng.randrange(10**6), rows))
        cases.append({"file": path.name, "batch_size": bs, "test_size": test, "shuffle_seed": rng.randint(0, 2)})
    (tmp_path / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
    out = tmp_path / "tcb.json"
    proc = subprocess.run(
        [python, str(SCRIPT), "--renderer", load_fixture()["renderer"], "--tokenizer", str(shared_tokenizers / load_fixture()["tokenizer"]),
         "--cases", str(tmp_path / "cases.json"), "--root", str(tmp_path), "--epochs", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = json.loads(out.read_text(encoding="utf-8"))
    for case in recorded["cases"]:
        check_case(case, recorded["datums"][case["file"]], recorded["epochs"], renderer, tmp_path)
