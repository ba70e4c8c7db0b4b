"""Every registered preference loss against its paper's formula, in float64.

The formulas are written here again, independently of
`cookbook_cli.preference.losses`, over per-row logprob sums (the papers'
definitions: DPO/cDPO, IPO, SLiC hinge, robust DPO, SimPO, ORPO, KTO), and
differentiated by torch.autograd:

- on the loss function itself: value, metrics and the per-token gradient;
- through the local engine in float64: the parameter gradient of
  `forward_backward_custom` with the registered loss equals the one with the
  formula, on an identical copy of the model.

Also: hyperparameters out of range or not taken by a loss are refused in one
line, and a plugin's preference loss becomes a `train dpo --loss-type` choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from preference_helpers import random_pairs
from tinker.types import Datum

from cookbook_cli.preference.losses import BUILTIN_PREFERENCE_LOSSES, PreferenceLoss


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return -torch.log1p(torch.exp(-x))


def _dpo_h(s: dict[str, torch.Tensor]) -> torch.Tensor:
    return (s["c"] - s["c_ref"]) - (s["r"] - s["r_ref"])


def _log_odds(mean_logprob: torch.Tensor) -> torch.Tensor:
    p = torch.exp(mean_logprob)
    return torch.log(p) - torch.log(1 - p)


# name -> (hyperparameters, formula over the rows' sums -> per-row losses); averaged over rows.
FORMULAS: dict[str, tuple[dict[str, float], Any]] = {
    # Rafailov et al. 2023; label smoothing e as in cDPO (Mitchell 2023)
    "sigmoid": ({"beta": 0.3, "label_smoothing": 0.2},
                lambda s, p: -(1 - p["label_smoothing"]) * log_sigmoid(p["beta"] * _dpo_h(s))
                - p["label_smoothing"] * log_sigmoid(-p["beta"] * _dpo_h(s))),
    # Azar et al. 2023, eq. 17: (h - 1/(2 tau))^2
    "ipo": ({"beta": 0.3}, lambda s, p: (_dpo_h(s) - 1 / (2 * p["beta"])) ** 2),
    # Zhao et al. 2023 (SLiC-HF calibration loss on the log-ratio): max(0, delta - beta h), delta = 1
    "hinge": ({"beta": 0.3}, lambda s, p: torch.clamp(1 - p["beta"] * _dpo_h(s), min=0)),
    # Chowdhury et al. 2024, eq. 8: the unbiased loss under flip rate e
    "robust": ({"beta": 0.3, "label_smoothing": 0.25},
               lambda s, p: ((1 - p["label_smoothing"]) * -log_sigmoid(p["beta"] * _dpo_h(s))
                             - p["label_smoothing"] * -log_sigmoid(-p["beta"] * _dpo_h(s))) / (1 - 2 * p["label_smoothing"])),
    # Meng et al. 2024, eq. 6
    "simpo": ({"beta": 1.5, "simpo_gamma": 0.3},
              lambda s, p: -log_sigmoid(p["beta"] / s["c_len"] * s["c"] - p["beta"] / s["r_len"] * s["r"] - p["simpo_gamma"])),
    # Hong et al. 2024, eqs. 2-7: L_SFT + lambda L_OR, P = exp(mean token logprob)
    "orpo": ({"orpo_lambda": 0.2},
             lambda s, p: -s["c"] / s["c_len"]
             - p["orpo_lambda"] * log_sigmoid(_log_odds(s["c"] / s["c_len"]) - _log_odds(s["r"] / s["r_len"]))),
    # Ethayarajh et al. 2024, eq. 8, with z0 from the mismatched pairs (b side), no gradient
    "kto": ({"beta": 0.3, "desirable_weight": 1.5, "undesirable_weight": 0.5}, None),
}


def _kto(s: dict[str, torch.Tensor], p: dict[str, float], desirable: torch.Tensor) -> torch.Tensor:
    z0 = torch.clamp((s["r"] - s["r_ref"]).mean(), min=0).detach()
    r = s["c"] - s["c_ref"]
    v_desirable = p["desirable_weight"] * torch.sigmoid(p["beta"] * (r - z0))
    v_undesirable = p["undesirable_weight"] * torch.sigmoid(p["beta"] * (z0 - r))
    lam = torch.where(desirable > 0, torch.tensor(p["desirable_weight"], dtype=torch.float64), torch.tensor(p["undesirable_weight"], dtype=torch.float64))
    return lam - torch.where(desirable > 0, v_desirable, v_undesirable)


def formula_loss(name: str, s: dict[str, torch.Tensor], desirable: torch.Tensor | None) -> torch.Tensor:
    params, fn = FORMULAS[name]
    return (_kto(s, params, desirable) if name == "kto" else fn(s, params)).mean()


def sums_of(data: list[Datum], logprobs: list[torch.Tensor], reference: list[tuple[float, float]]) -> dict[str, torch.Tensor]:
    """The formula's inputs, computed here: sums of weight * logprob, lengths, reference sums."""
    w = [torch.tensor(d.loss_fn_inputs["weights"].data, dtype=torch.float64) for d in data]
    s = torch.stack([(lp.to(torch.float64) * wi).sum() for lp, wi in zip(logprobs, w)])
    n = torch.stack([wi.sum() for wi in w])
    ref = torch.tensor(reference, dtype=torch.float64)
    return {"c": s[0::2], "r": s[1::2], "c_len": n[0::2], "r_len": n[1::2], "c_ref": ref[:, 0], "r_ref": ref[:, 1]}


@pytest.mark.parametrize("name", list(FORMULAS))
def test_value_metrics_and_gradient_are_the_papers_formula(name: str) -> None:
    rng = np.random.default_rng(7)
    rows = 6
    data = random_pairs(rng, rows)
    loss_obj = BUILTIN_PREFERENCE_LOSSES[name]
    reference = [(float(-rng.uniform(2, 12)), float(-rng.uniform(2, 12))) for _ in range(rows)]
    desirable = [bool(x) for x in rng.integers(0, 2, size=rows)] if loss_obj.unpaired else None
    mine = [torch.tensor(-rng.uniform(0.05, 2.0, size=d.loss_fn_inputs["weights"].shape[0]), dtype=torch.float64, requires_grad=True) for d in data]
    theirs = [lp.detach().clone().requires_grad_(True) for lp in mine]

    params = FORMULAS[name][0]
    fn = loss_obj.custom_loss(name, params, reference if loss_obj.needs_reference else None, desirable)
    loss, metrics = fn(data, mine)
    loss.backward()
    expected = formula_loss(name, sums_of(data, theirs, reference), torch.tensor(desirable, dtype=torch.float64) if desirable else None)
    expected.backward()

    assert loss.dtype == torch.float64
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-12, abs=1e-15)
    assert metrics[loss_obj.metric] == pytest.approx(float(expected.detach()), rel=1e-12)
    assert metrics["num_pairs"] == rows
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-15)
    assert any(float(a.grad.abs().max()) > 0 for a in mine)
    s = sums_of(data, [lp.detach() for lp in theirs], reference)
    if not loss_obj.unpaired:
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert metrics["margin"] == pytest.approx(metrics["chosen_reward"] - metrics["rejected_reward"], rel=1e-9, abs=1e-12)
    if name in ("sigmoid", "ipo", "hinge", "robust"):
        h = _dpo_h(s)
        assert metrics["accuracy"] == float((h > 0).double().mean())
        assert metrics["margin"] == pytest.approx(float(params["beta"] * h.mean()), rel=1e-10)
    if name == "kto":
        z0 = max(0.0, float((s["r"] - s["r_ref"]).mean()))
        assert metrics["kl"] == pytest.approx(z0, rel=1e-12, abs=1e-15)
        r = s["c"] - s["c_ref"]
        right = [(float(x) > z0) if d else (float(x) < z0) for x, d in zip(r, desirable, strict=True)]
        assert metrics["accuracy"] == sum(right) / rows


def test_kto_reference_point_is_clamped_at_zero_and_carries_no_gradient() -> None:
    """With the mismatched pairs' log-ratios positive, z0 > 0 moves the loss but
    the mismatched datums get no gradient; negative, z0 = 0."""
    rng = np.random.default_rng(3)
    data = random_pairs(rng, 4)
    lps = [torch.tensor(-rng.uniform(0.1, 1.0, size=d.loss_fn_inputs["weights"].shape[0]), dtype=torch.float64, requires_grad=True) for d in data]
    kto = BUILTIN_PREFERENCE_LOSSES["kto"]
    for offset, positive in ((-50.0, True), (50.0, False)):
        reference = [(-3.0, offset) for _ in range(4)]
        for lp in lps:
            lp.grad = None
        loss, metrics = kto.custom_loss("kto", {}, reference, [True, False, True, False])(data, lps)
        loss.backward()
        assert (metrics["kl"] > 0) is positive and metrics["kl"] >= 0
        assert all(lp.grad is None or float(lp.grad.abs().max()) == 0.0 for lp in lps[1::2])


def test_sigmoid_without_smoothing_is_the_dpo_loss_exactly() -> None:
    from cookbook_cli.preference.loss import dpo_loss_fn

    rng = np.random.default_rng(11)
    data = random_pairs(rng, 4)
    lps = [torch.tensor(-rng.uniform(0.1, 3.0, size=d.loss_fn_inputs["weights"].shape[0]), dtype=torch.float64) for d in data]
    reference = [(float(-rng.uniform(5, 20)), float(-rng.uniform(5, 20))) for _ in range(4)]
    a = dpo_loss_fn(reference, 0.1)(data, lps)
    b = BUILTIN_PREFERENCE_LOSSES["sigmoid"].custom_loss("sigmoid", {}, reference)(data, lps)
    assert float(a[0]) == float(b[0]) and a[1] == b[1]


# -- through the local engine in float64 -----------------------------------------------------------


def _grads(client: Any) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in client.trainable_parameters().items() if p.grad is not None}


def _engine_rows(unpaired: bool) -> tuple[list[Datum], list[bool] | None]:
    from cookbook_cli.preference.builders import ComparisonsBuilder
    from cookbook_cli.preference.unpaired_builders import UnpairedBuilder
    from cookbook_cli.renderers import get_renderer

    renderer = get_renderer("llama3", "llama3")
    builder = UnpairedBuilder() if unpaired else ComparisonsBuilder()
    train, _ = builder.build(renderer, 4, 128, seed=0)
    batch = train.build_batch(0)
    return batch.datums, batch.desirable


@pytest.fixture(scope="module")
def service64():
    from cookbook_cli.engines.local.service import LocalServiceClient

    with LocalServiceClient(device="cpu", dtype="float64") as svc:
        yield svc


@pytest.mark.parametrize("name", list(FORMULAS))
def test_local_engine_float64_parameter_gradient_is_the_formulas(name: str, service64: Any) -> None:
    loss_obj = BUILTIN_PREFERENCE_LOSSES[name]
    data, desirable = _engine_rows(loss_obj.unpaired)
    rows = len(data) // 2
    rng = np.random.default_rng(5)
    # reference sums away from the policy's, so h and the KL estimate are not 0
    reference = [(float(-rng.uniform(20, 60)), float(-rng.uniform(20, 60))) for _ in range(rows)]
    labels = torch.tensor(desirable, dtype=torch.float64) if desirable is not None else None

    def formula(batch: list[Datum], lps: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        loss = formula_loss(name, sums_of(batch, lps, reference), labels)
        return loss, {"formula": float(loss.detach())}

    policy = service64.create_lora_training_client("random:tiny:llama3", rank=4, seed=0)
    twin = service64.create_lora_training_client("random:tiny:llama3", rank=4, seed=0)
    fn = loss_obj.custom_loss(name, FORMULAS[name][0], reference if loss_obj.needs_reference else None, desirable)
    out = policy.forward_backward_custom(data, fn).result()
    expected = twin.forward_backward_custom(data, formula).result()
    assert out.metrics[loss_obj.metric] == pytest.approx(expected.metrics["formula"], rel=1e-12)
    mine, theirs = _grads(policy), _grads(twin)
    assert mine and mine.keys() == theirs.keys() and any(float(g.abs().max()) > 0 for g in mine.values())
    for key, g in mine.items():
        torch.testing.assert_close(g, theirs[key], rtol=1e-10, atol=1e-13, msg=key)


# -- hyperparameters and plugins ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "words, message",
    [
        (["--loss-type", "orpo", "--beta", "0.2"], "loss_type 'orpo' takes no --beta (it takes: --orpo-lambda)"),
        (["--loss-type", "ipo", "--label-smoothing", "0.1"], "loss_type 'ipo' takes no --label-smoothing (it takes: --beta)"),
        (["--loss-type", "robust", "--label-smoothing", "0.5"], "--label-smoothing must be >= 0 and < 0.5, got 0.5"),
        (["--loss-type", "simpo", "--beta", "0"], "--beta must be > 0, got 0"),
        (["--loss-type", "simpo", "--simpo-gamma", "-1"], "--simpo-gamma must be >= 0, got -1"),
        (["--loss-type", "simpo", "--reference", "x"], "loss_type 'simpo' uses no reference model; drop --reference"),
        (["--loss-type", "kto"], "`train dpo --loss-type` takes preference loss functions: sigmoid, ipo, hinge, robust, simpo, orpo"),
        (["--loss-type", "nope"], "unknown loss function 'nope'"),
        (["loss_config.beta=1"], "loss_config.beta: set beta with --beta"),
        (["loss_config.tau=1"], "loss_type 'sigmoid' takes no loss_config.tau"),
    ],
)
def test_bad_loss_settings_are_one_line_before_anything_loads(words: list[str], message: str, tmp_path) -> None:
    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app

    log_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "dpo", "--log-dir", str(log_dir), *words])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not log_dir.exists()


def test_kto_takes_only_unpaired_losses_and_data(tmp_path) -> None:
    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app

    for words, message in (
        (["--loss-type", "simpo"], "`train kto --loss-type` takes preference-unpaired loss functions: kto"),
        (["--dataset", "comparisons"], "`train kto` takes preference-unpaired datasets"),
        (["--orpo-lambda", "0.1"], "loss_type 'kto' takes no --orpo-lambda"),
        (["--desirable-weight", "0"], "--desirable-weight must be > 0, got 0"),
    ):
        result = CliRunner().invoke(app, ["train", "kto", "--log-dir", str(tmp_path / "run"), *words])
        assert result.exit_code != 0 and message in result.output, result.output


def _margin_loss(rows: Any, p: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """A plugin's reference-free loss: squared hinge on the raw sum difference."""
    diff = rows.chosen - rows.rejected
    return torch.clamp(p["margin"] - diff, min=0) ** 2, {"accuracy": float((diff > 0).double().mean())}


class MarginLossPlugin:
    from cookbook_cli import hookimpl

    @staticmethod
    @hookimpl
    def register_loss_functions(register: Any) -> None:
        from cookbook_cli.preference.losses import Hyperparameter

        loss = PreferenceLoss(_margin_loss, "squared hinge on S_c - S_r", {"margin": Hyperparameter(1.0, low=0.0)}, needs_reference=False)
        register("sq_margin", loss, "A plugin's preference loss.", kind="preference")


def test_a_plugin_loss_is_a_loss_type_choice_and_trains(cookbook_plugin: Any, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app

    cookbook_plugin(MarginLossPlugin(), name="toy-preference-losses")
    runner = CliRunner()
    helped = runner.invoke(app, ["train", "dpo", "--help"], env={"COLUMNS": "300"})
    assert "one of sigmoid, ipo, hinge, robust, simpo, orpo, sq_margin" in " ".join(helped.output.split()), helped.output
    listed = {r["name"]: r for r in json.loads(runner.invoke(app, ["losses", "list", "--json"]).output)}
    assert listed["sq_margin"]["kind"] == "preference" and listed["sq_margin"]["config"] == {"margin": 1.0}
    assert listed["sq_margin"]["reference"] is False and listed["kto"]["kind"] == "preference-unpaired"
    bad = runner.invoke(app, ["train", "dpo", "--loss-type", "sq_margin", "--beta", "1", "--log-dir", str(tmp_path / "bad")])
    assert "loss_type 'sq_margin' takes no --beta (it takes: loss_config.margin)" in bad.output
    log_dir = tmp_path / "run"
    result = runner.invoke(app, [
        "train", "dpo", "--loss-type", "sq_margin", "--max-steps", "1", "--batch-size", "4", "--eval-every", "0",
        "--log-dir", str(log_dir), "loss_config.margin=2", "dataset.test_size=8",
    ])
    assert result.exit_code == 0, result.output
    assert "Reference logprobs" not in result.output and not (log_dir / "reference").exists()
    config = json.loads((log_dir / "config.json").read_text())
    assert config["loss_type"] == "sq_margin" and config["loss_config"] == {"margin": 2.0} and config["beta"] is None
    rows = [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]
    assert "dpo_loss" in rows[0] and "test/accuracy" in rows[-1]


def test_rl_refuses_a_preference_loss_before_anything_loads(tmp_path) -> None:
    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app

    result = CliRunner().invoke(app, ["train", "rl", "--loss-fn", "ipo", "--log-dir", str(tmp_path / "run")])
    assert result.exit_code != 0 and "loss 'ipo' is a preference loss" in result.output, result.output
    assert not (tmp_path / "run").exists()
