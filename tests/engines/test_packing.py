"""Packed training batches: the layouts cover every sequence once within their
bounds, and every layout gives the padded batch's logprobs, losses and
gradients (float64, agreement to ~1e-12) for each built-in loss and for
forward_backward_custom, under LoRA and full fine-tuning, in one micro-batch
or many."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from cookbook_cli.engines.local.packing import CostModel, plan_batch

LENGTHS = (17, 3, 29, 1, 11, 8, 22)  # unequal: padding would be 53% of a padded batch
LAYOUTS = [("flat", None), ("rows", None), ("auto", 40), ("rows", 30), ("flat", 30)]  # 40 / 30: several micro-batches
LOSSES = {
    "cross_entropy": None,
    "importance_sampling": None,
    "ppo": {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1},
    "cispo": None,
    "dro": {"beta": 0.2},
}


def check_plan(lengths: list[int], plan: list[Any], max_tokens: int) -> None:
    seen = sorted(p.index for mb in plan for p in mb.placements)
    assert seen == list(range(len(lengths)))
    for mb in plan:
        assert mb.slots <= max_tokens or len(mb.placements) == 1
        cells: set[tuple[int, int]] = set()
        for p in mb.placements:
            assert p.length == lengths[p.index] and 0 <= p.row < mb.rows and p.start + p.length <= mb.width
            span = {(p.row, c) for c in range(p.start, p.start + p.length)}
            assert not span & cells  # no two sequences share a slot
            cells |= span


@pytest.mark.parametrize("mode", ["auto", "flat", "rows", "pad"])
@pytest.mark.parametrize("max_tokens", [1, 30, 64, 4096])
def test_plans_cover_each_sequence_once_within_bounds(mode: str, max_tokens: int) -> None:
    rng = np.random.default_rng(max_tokens)
    for _ in range(20):
        lengths = rng.integers(1, 50, size=int(rng.integers(1, 12))).tolist()
        check_plan(lengths, plan_batch(lengths, mode, max_tokens, CostModel(1.0, float(rng.uniform(0, 1)))), max_tokens)


def test_layouts_remove_padding() -> None:
    lengths = list(LENGTHS)
    pad = plan_batch(lengths, "pad", 4096)
    assert [mb.slots for mb in pad] == [len(lengths) * max(lengths)]
    flat = plan_batch(lengths, "flat", 4096)
    assert len(flat) == 1 and flat[0].rows == 1 and flat[0].slots == sum(lengths)  # no pads at all
    rows = plan_batch(lengths, "rows", 4096)
    assert rows[0].width == max(lengths) and rows[0].slots < pad[0].slots
    # Row width never passes the model's position limit.
    assert all(mb.width <= 40 for mb in plan_batch(lengths, "flat", 4096, max_row=40))


def test_auto_follows_the_attention_cost() -> None:
    lengths = [300, 280, 250, 200, 120, 90, 40, 30]
    varlen = plan_batch(lengths, "auto", 8192, CostModel(per_slot=1.0, per_score=1.0, varlen=True))
    assert varlen[0].rows == 1 and varlen[0].slots == sum(lengths)  # variable-length kernels: one flat row
    dense = plan_batch(lengths, "auto", 8192, CostModel(per_slot=1.0, per_score=1.0))
    assert max(mb.width for mb in dense) == max(lengths)  # quadratic masked attention: narrow rows
    linear = plan_batch(lengths, "auto", 8192, CostModel(per_slot=1.0, per_score=0.0))
    assert sum(mb.slots for mb in linear) == sum(lengths)  # attention free: no pads


# -- the engine: packed equals padded ----------------------------------------------------------


VOCAB = 512  # the size of `small_vocab_model`'s vocabulary


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Any, Any]]:
    from cookbook_cli.engines.local.service import LocalServiceClient

    layouts = [("pad", None), *LAYOUTS]
    svcs = {
        (mode, mt): LocalServiceClient(
            device="cpu", dtype="float64", packing=mode, max_tokens_per_microbatch=mt, checkpoint_dir=tmp_path_factory.mktemp("pk")
        )
        for mode, mt in layouts
    }
    yield svcs
    for svc in svcs.values():
        svc.close()


def make_data(h: Any, rng: np.random.Generator, lp_source: Any = None) -> list[Any]:
    """Variable-length data carrying every loss's inputs; sampler logprobs near
    the model's own so the clipped losses see both sides of the clip range."""
    seqs = [h.random_tokens(rng, n + 1, VOCAB) for n in LENGTHS]
    plain = [h.datum(s) for s in seqs]
    current = lp_source.forward(plain, "cross_entropy").result().loss_fn_outputs
    data = []
    for s, out in zip(seqs, current, strict=True):
        lp = out["logprobs"].to_numpy()
        n = lp.shape[0]
        data.append(
            h.datum(
                s,
                weights=rng.integers(0, 2, size=n) * rng.uniform(0.5, 2.0, size=n),
                logprobs=lp + rng.normal(0.0, 0.2, size=n),
                advantages=rng.normal(0.0, 1.0, size=n),
            )
        )
    return data


def grads_of(tc: Any) -> dict[str, torch.Tensor]:
    """The accumulated gradients, which are then cleared."""
    grads = {}
    for n, p in tc.trainable_parameters().items():
        grads[n] = p.grad if p.grad is not None else torch.zeros_like(p)
        p.grad = None
    return grads


def coupled_loss(data: list[Any], logprobs: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """A loss that mixes sequences (as DPO does), so the whole batch must be seen at once."""
    sums = torch.stack([lp.sum() for lp in logprobs])
    loss = -torch.nn.functional.logsigmoid(sums[1:] - sums[:-1]).sum() + (sums.softmax(0) * sums).sum()
    return loss, {"pairs": float(len(logprobs) - 1)}


def assert_same(a: Any, b: Any, ga: dict[str, torch.Tensor], gb: dict[str, torch.Tensor]) -> None:
    assert a.metrics["loss:sum"] == pytest.approx(b.metrics["loss:sum"], rel=1e-11, abs=1e-11)
    for oa, ob in zip(a.loss_fn_outputs, b.loss_fn_outputs, strict=True):
        for key in oa:
            np.testing.assert_allclose(oa[key].to_numpy(), ob[key].to_numpy(), rtol=1e-6, atol=1e-6)  # float32 outputs
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("rank", [0, 4])
def test_packed_equals_padded_for_every_loss_and_custom(h: Any, small_vocab_model: str, services: dict[Any, Any], rank: int) -> None:
    clients = {key: svc.create_lora_training_client(small_vocab_model, rank=rank, seed=1) for key, svc in services.items()}
    ref = clients[("pad", None)]
    if rank:  # a LoRA adapter starts at zero: move it so its gradients are not trivially alike
        from tinker import types

        boost = make_data(h, np.random.default_rng(9), ref)
        for tc in clients.values():
            tc.forward_backward(boost, "cross_entropy").result()
            tc.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    data = make_data(h, np.random.default_rng(rank), ref)
    # Different layouts really were used: the micro-batch shapes the model saw.
    shapes: list[tuple[int, int]] = []
    hook = clients[("rows", 30)].model.register_forward_pre_hook(lambda m, a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    for name, config in LOSSES.items():
        want = ref.forward_backward(data, name, config).result()
        want_g = grads_of(ref)
        for key, tc in clients.items():
            if key == ("pad", None):
                continue
            got = tc.forward_backward(data, name, config).result()
            assert_same(got, want, grads_of(tc), want_g)
    hook.remove()
    assert shapes and all(r * w <= 30 or r == 1 for r, w in shapes) and len(shapes) >= 2 * len(LOSSES)
    want = ref.forward_backward_custom(data, coupled_loss).result()
    want_g = grads_of(ref)
    for key, tc in clients.items():
        if key != ("pad", None):
            got = tc.forward_backward_custom(data, coupled_loss).result()
            assert got.metrics["pairs"] == len(data) - 1
            assert_same(got, want, grads_of(tc), want_g)


def test_packed_two_dimensional_targets(h: Any, small_vocab_model: str, services: dict[Any, Any]) -> None:
    """target_tokens of shape (N, K), as off-policy distillation sends."""
    from tinker import types

    rng = np.random.default_rng(5)
    data = []
    for n in LENGTHS:
        targets = rng.integers(0, VOCAB, size=(n, 3))
        data.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(h.random_tokens(rng, n, VOCAB)),
                loss_fn_inputs={
                    "target_tokens": types.TensorData.from_numpy(targets),
                    "weights": types.TensorData.from_numpy(rng.uniform(0, 1, size=(n, 3))),
                },
            )
        )
    ref = services[("pad", None)].create_lora_training_client(small_vocab_model, rank=0)
    packed = services[("rows", 30)].create_lora_training_client(small_vocab_model, rank=0)
    want = ref.forward_backward(data, "cross_entropy").result()
    got = packed.forward_backward(data, "cross_entropy").result()
    assert got.loss_fn_outputs[2]["logprobs"].to_numpy().shape == (LENGTHS[2], 3)
    assert_same(got, want, grads_of(packed), grads_of(ref))


def test_a_sequence_longer_than_the_bound_runs_alone(h: Any, small_vocab_model: str, services: dict[Any, Any]) -> None:
    rng = np.random.default_rng(3)
    data = [h.datum(h.random_tokens(rng, n + 1, VOCAB), weights=[1.0] * n) for n in (50, 5, 6)]
    ref = services[("pad", None)].create_lora_training_client(small_vocab_model, rank=0)
    packed = services[("rows", 30)].create_lora_training_client(small_vocab_model, rank=0)
    assert_same(packed.forward(data, "cross_entropy").result(), ref.forward(data, "cross_entropy").result(), {}, {})


def test_compute_logprobs_is_packed_and_matches_alone(h: Any, small_vocab_model: str, services: dict[Any, Any]) -> None:
    from tinker import types

    sc = services[("rows", 30)].create_sampling_client(base_model=small_vocab_model)
    rng = np.random.default_rng(4)
    prompts = [types.ModelInput.from_ints(h.random_tokens(rng, n, VOCAB)) for n in (1, *LENGTHS)]
    alone = [sc.compute_logprobs(p).result() for p in prompts]
    together = [f.result() for f in [sc.compute_logprobs(p) for p in prompts]]
    assert alone[0] == [None] and together[0] == [None]
    for a, b in zip(alone, together, strict=True):
        assert a[0] is None and b[0] is None
        np.testing.assert_allclose(a[1:], b[1:], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("packing", "tight", "packing 'tight' is not a layout: use one of auto, flat, rows, pad"),
        ("max_tokens_per_microbatch", "0", "max_tokens_per_microbatch must be a whole number >= 1, got '0'"),
        ("max_tokens_per_microbatch", "lots", "got 'lots'"),
        ("max_sampling_rows", "-3", "max_sampling_rows must be a whole number >= 1"),
    ],
)
def test_bad_engine_options_are_one_line_through_the_cli(tmp_path: Any, option: str, value: str, message: str) -> None:
    import json

    from typer.testing import CliRunner

    from cookbook_cli.cli.main import app

    data = tmp_path / "c.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(4)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["train", "sl", "--dataset", str(data), "--model", "random:tiny:llama3", "--log-dir", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "batch_size=2", f"engine_options.{option}={value}"])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and message in lines[0], result.output


def test_engine_options_accept_numbers_as_text() -> None:
    from cookbook_cli.engines.local.service import LocalServiceClient

    svc = LocalServiceClient(device="cpu", packing="rows", max_tokens_per_microbatch="2048", max_sampling_rows="8")
    assert (svc.packing, svc.max_tokens_per_microbatch, svc.max_sampling_rows) == ("rows", 2048, 8)
    assert LocalServiceClient(device="cpu").max_tokens_for(128256) == 4096  # 2 GiB of float32 logits
    svc.close()
