"""The local engine's faster paths compute what the reference paths compute:
per-sequence attention for packed rows against sdpa under transformers'
block-diagonal mask, the fused LoRA linear against peft's forward (float64,
values and gradients), and the rule that sets torch's thread count."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from cookbook_cli.engines.local import threads
from cookbook_cli.engines.local.attention import PACKED_ATTENTION, is_packed, segments_of
from cookbook_cli.engines.local.batch import Example, MicroBatchTensors, plan, target_logprobs
from cookbook_cli.engines.local.lora import apply_lora, fuse_adapters
from cookbook_cli.engines.local.models import load_base_model
from cookbook_cli.engines.local.packing import plan_batch

LENGTHS = (17, 3, 29, 1, 11, 8, 22)


def batch_of(lengths: tuple[int, ...], vocab: int, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        tokens = rng.integers(0, vocab, size=n + 1)
        out.append(Example(tokens[:-1].astype(np.int64), tokens[1:].astype(np.int64), {}))
    return out


def logprobs_and_grads(
    model: Any, batch: list[Example], mode: str, max_tokens: int, backward: bool = True
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Per-sequence logprobs of `batch` laid out by `mode`, and the gradients of
    a weighted sum of them with respect to every trainable parameter."""
    model.zero_grad(set_to_none=True)
    per_seq: list[Any] = [None] * len(batch)
    for mb in plan_batch([e.length for e in batch], mode, max_tokens):
        t = MicroBatchTensors.build(mb, batch, (), torch.device("cpu"), torch.float64)
        lp = target_logprobs(model, t, torch.float64)
        if backward:
            weights = torch.linspace(0.5, 1.5, lp.numel(), dtype=torch.float64).view(lp.shape)
            (lp * weights * t.mask).sum().backward()  # positions differ between layouts: weight by value, not slot
        t.scatter(lp, per_seq)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return per_seq, grads


@pytest.fixture(scope="module")
def tiny(small_vocab_model: str) -> Any:
    return load_base_model(small_vocab_model, torch.float64)


def test_models_load_with_per_sequence_attention(tiny: Any) -> None:
    assert is_packed(tiny.model) and tiny.model.config._attn_implementation == PACKED_ATTENTION
    # Its packing plan follows: no attention cost across sequences, so one row, no pads.
    mb = plan(tiny.model, batch_of(LENGTHS, tiny.vocab_size), "auto", 4096)
    assert len(mb) == 1 and mb[0].rows == 1 and mb[0].slots == sum(LENGTHS)


def test_segments_follow_the_layout() -> None:
    (mb,) = plan_batch([5, 1, 3], "rows", 4096)  # rows 5 wide: [5], [1, 3, one pad]
    assert (mb.rows, mb.width) == (2, 5)
    assert segments_of(mb) == ((5,), (1, 4))  # the pad joins the row's last sequence
    (flat,) = plan_batch([5, 1, 3], "flat", 4096)
    assert segments_of(flat) == ((5, 1, 3),)


@pytest.mark.parametrize(("mode", "max_tokens"), [("flat", 4096), ("rows", 4096), ("flat", 40), ("pad", 4096)])
@pytest.mark.parametrize("rank", [0, 4])
def test_per_sequence_attention_equals_the_masked_sdpa(small_vocab_model: str, mode: str, max_tokens: int, rank: int) -> None:
    """Logprobs and gradients of packed rows: cookbook_packed against sdpa with
    transformers' block-diagonal mask, the path it replaces (float64)."""
    models = []
    for impl in (PACKED_ATTENTION, "sdpa"):
        model = load_base_model(small_vocab_model, torch.float64).model
        model.set_attn_implementation(impl)
        model.requires_grad_(rank == 0)
        models.append(apply_lora(model, rank, 0, True, True, True) if rank else model)
    batch = batch_of(LENGTHS, 512)
    (lp_new, g_new), (lp_ref, g_ref) = (logprobs_and_grads(m, batch, mode, max_tokens) for m in models)
    assert is_packed(models[0]) and not is_packed(models[1])
    for a, b in zip(lp_new, lp_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    assert g_new.keys() == g_ref.keys() and g_new
    for name in g_ref:
        torch.testing.assert_close(g_new[name], g_ref[name], rtol=1e-9, atol=1e-10, msg=name)


def test_per_sequence_attention_in_bfloat16_matches_the_masked_sdpa(small_vocab_model: str) -> None:
    """bf16 weights (the CPU's bf16 LoRA base): per-sequence attention, run in
    float32 on the CPU, agrees with the masked bf16 sdpa to bf16 precision."""
    out = []
    for impl in (PACKED_ATTENTION, "sdpa"):
        model = load_base_model(small_vocab_model, torch.bfloat16).model
        model.set_attn_implementation(impl)
        with torch.no_grad():
            out.append(logprobs_and_grads(model, batch_of(LENGTHS, 512), "flat", 4096, backward=False)[0])
    new, ref = torch.cat(out[0]), torch.cat(out[1])
    assert float((new - ref).norm() / ref.norm()) < 1e-2


def test_packed_rows_match_each_sequence_alone(tiny: Any) -> None:
    """A packed row's logprobs are those of each sequence run on its own."""
    batch = batch_of(LENGTHS, tiny.vocab_size, seed=1)
    packed, _ = logprobs_and_grads(tiny.model, batch, "flat", 4096)
    with torch.no_grad():
        for e, lp in zip(batch, packed, strict=True):
            logits = tiny.model(input_ids=torch.from_numpy(e.tokens)[None], use_cache=False).logits[0]
            alone = logits.log_softmax(-1).gather(-1, torch.from_numpy(e.targets)[:, None])[:, 0]
            torch.testing.assert_close(lp.detach(), alone, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_fused_lora_equals_peft(small_vocab_model: str, dtype: torch.dtype) -> None:
    """The fused LoRA linear gives peft's outputs and gradients; with a bf16
    base and float32 adapter (the bf16 engine), the float64 ones within bf16 rounding."""
    from peft.tuners.lora.layer import Linear

    model = load_base_model(small_vocab_model, dtype).model
    model.requires_grad_(False)
    model = apply_lora(model, 4, 0, True, True, True)
    fused = [m for m in model.modules() if isinstance(m, Linear)]
    assert fused and all(type(m) is not Linear for m in fused)
    torch.manual_seed(0)
    with torch.no_grad():  # a non-zero B, so the adapter term counts
        for m in fused:
            m.lora_B["default"].weight.normal_(0, 0.1)
    ids = torch.randint(0, 512, (2, 9))

    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        logits = model(input_ids=ids, use_cache=False).logits.float()
        (logits * torch.linspace(-1, 1, logits.shape[-1])).sum().backward()
        return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    out_fused, g_fused = run()
    for m in fused:
        m.__class__ = Linear  # peft's own forward
    out_peft, g_peft = run()
    if dtype == torch.float64:
        torch.testing.assert_close(out_fused, out_peft, rtol=1e-9, atol=1e-10)
        for name in g_peft:
            torch.testing.assert_close(g_fused[name], g_peft[name], rtol=1e-9, atol=1e-10, msg=name)
    else:
        # bf16 activations: the fused path runs the adapter in bf16 (as bf16
        # autocast does), peft in float32. Both are held to the float64
        # computation of the same weights: the fused path within bf16 rounding
        # of it, and about as close as peft's (the bf16 base dominates both).
        model.double()
        out_ref, g_ref = run()

        def err(a: torch.Tensor, ref: torch.Tensor) -> float:
            return float((a.double() - ref).norm() / ref.norm())

        assert err(out_fused, out_ref) < 2e-2 and err(out_fused, out_ref) < 1.5 * err(out_peft, out_ref)
        fused_errs = sorted(err(g_fused[n], g_ref[n]) for n in g_ref)
        peft_errs = sorted(err(g_peft[n], g_ref[n]) for n in g_ref)
        assert fused_errs[-1] < 0.1 and fused_errs[len(fused_errs) // 2] < 1.5 * peft_errs[len(peft_errs) // 2]
    assert fuse_adapters(model) == len(fused)


def test_fused_lora_leaves_dropout_to_peft(small_vocab_model: str) -> None:
    """Anything but the plain adapter (here: dropout while training) runs peft's forward."""
    import peft
    from peft.tuners.lora.layer import Linear

    model = load_base_model(small_vocab_model, torch.float64).model
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_dropout=0.5, target_modules=["q_proj"]))
    assert fuse_adapters(wrapped) == model.config.num_hidden_layers
    wrapped.train()
    ids = torch.randint(0, 512, (1, 7))
    torch.manual_seed(3)
    fused = wrapped(input_ids=ids, use_cache=False).logits
    for m in wrapped.modules():
        if isinstance(m, Linear):
            m.__class__ = Linear
    torch.manual_seed(3)
    torch.testing.assert_close(fused, wrapped(input_ids=ids, use_cache=False).logits, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("current", "allowed", "environ", "expected"),
    [
        (64, 2, {}, 2),  # torch's per-core default inside a 2-CPU cpuset
        (2, 2, {}, 2),
        (1, 8, {}, 1),  # lowered already (torch.set_num_threads): kept, never raised
        (64, 2, {"OMP_NUM_THREADS": "64"}, 64),  # an explicit variable stands
        (64, 2, {"TORCH_NUM_THREADS": "8"}, 64),
        (64, 2, {"OMP_NUM_THREADS": ""}, 2),  # empty is unset
    ],
)
def test_thread_count_rule(current: int, allowed: int, environ: dict[str, str], expected: int) -> None:
    assert threads.thread_count(current, allowed, environ) == expected


def test_threads_follow_the_allowed_cpus_once(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    for name in threads.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_done", False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    try:
        torch.set_num_threads(max(2, before))
        assert threads.follow_allowed_cpus() == 1
        torch.set_num_threads(max(2, before))
        assert threads.follow_allowed_cpus() == max(2, before)  # once per process: a later change stands
    finally:
        torch.set_num_threads(before)


def test_mkl_threads_are_not_dynamic_in_a_cookbook_process() -> None:
    """Importing cookbook_cli before torch turns MKL's dynamic threading off, so
    a busy machine cannot change a product's thread count (and its sums)."""
    import subprocess
    import sys

    code = (
        "import ctypes, glob, os, cookbook_cli, torch\n"
        "torch.randn(8, 8) @ torch.randn(8, 8)\n"
        "libs = glob.glob(os.path.join(os.path.dirname(torch.__file__), 'lib', 'libtorch_cpu.*'))\n"
        "get = getattr(ctypes.CDLL(libs[0]), 'mkl_serv_get_dynamic', None) if libs else None\n"
        "print(os.environ['MKL_DYNAMIC'], 'none' if get is None else get())\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MKL_DYNAMIC"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out[0] == "FALSE"
    assert out[1] in ("0", "none")  # none: a torch built without MKL
