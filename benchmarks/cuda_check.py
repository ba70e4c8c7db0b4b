"""The local engine's fast paths on a CUDA device: correctness and speed.

The suite proves the per-sequence packed attention (`cookbook_packed`), the
fused LoRA linear and fused AdamW on the CPU. This script runs the same
comparisons on a GPU, where the kernels differ (flash / memory-efficient sdpa,
cuBLAS addmm, the CUDA fused optimizer), and times packed attention against
the block-diagonal masked sdpa it replaces:

    python benchmarks/cuda_check.py            # needs torch with CUDA; exits 2 without one

Each check prints one line, PASS or FAIL with the measured difference; the exit
status is 1 when any check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engines.test_fast_paths import LENGTHS, batch_of  # noqa: E402 - the suite's packed batches, on this device


def word_tokenizer(folder: Path, size: int) -> str:
    """A `size`-word WordLevel tokenizer.json: random models need only its size."""
    import tokenizers

    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({f"w{i}": i for i in range(size)}, unk_token="w0"))
    tok.save(str(folder / "tokenizer.json"))
    return str(folder)


def model_for(spec: str, dtype: Any, attention: str, rank: int, device: Any) -> Any:
    from cookbook_cli.engines.local.lora import apply_lora
    from cookbook_cli.engines.local.models import load_base_model

    model = load_base_model(spec, dtype).model
    model.set_attn_implementation(attention)
    model.requires_grad_(rank == 0)
    if rank:
        model = apply_lora(model, rank, 0, True, True, True)
        import torch

        with torch.no_grad():  # a non-zero B, so the adapter term counts in the comparison
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.02)
    return model.to(device)


def logprobs_and_grads(model: Any, batch: list[Any], mode: str, device: Any, dtype: Any) -> tuple[Any, dict[str, Any]]:
    import torch

    from cookbook_cli.engines.local.batch import MicroBatchTensors, target_logprobs
    from cookbook_cli.engines.local.packing import plan_batch

    model.zero_grad(set_to_none=True)
    per_seq: list[Any] = [None] * len(batch)
    for mb in plan_batch([e.length for e in batch], mode, 1 << 16):
        t = MicroBatchTensors.build(mb, batch, (), device, torch.float32)
        lp = target_logprobs(model, t, torch.float32)
        weights = torch.linspace(0.5, 1.5, lp.numel(), device=device).view(lp.shape)
        (lp * weights * t.mask).sum().backward()
        t.scatter(lp, per_seq)
    grads = {n: p.grad.float().cpu() for n, p in model.named_parameters() if p.grad is not None}
    return torch.cat([torch.as_tensor(x).flatten() for x in per_seq]), grads


def rel(a: Any, b: Any) -> float:
    return float((a - b).norm() / max(float(b.norm()), 1e-30))


def check_packed_attention(spec: str, device: Any, results: list[bool]) -> None:
    import torch

    from cookbook_cli.engines.local.attention import PACKED_ATTENTION

    for dtype, rank, tol in ((torch.float32, 0, 1e-4), (torch.float32, 8, 1e-4), (torch.bfloat16, 8, 3e-2)):
        torch.manual_seed(0)
        new = model_for(spec, dtype, PACKED_ATTENTION, rank, device)
        torch.manual_seed(0)
        ref = model_for(spec, dtype, "sdpa", rank, device)
        ref.load_state_dict(new.state_dict())
        batch = batch_of(LENGTHS, 512)
        for mode in ("flat", "rows"):
            lp_new, g_new = logprobs_and_grads(new, batch, mode, device, dtype)
            lp_ref, g_ref = logprobs_and_grads(ref, batch, mode, device, dtype)
            worst_grad = max(rel(g_new[n], g_ref[n]) for n in g_ref)
            ok = rel(lp_new, lp_ref) < tol and worst_grad < tol * 10 and g_new.keys() == g_ref.keys()
            results.append(ok)
            print(f"{'PASS' if ok else 'FAIL'} packed attention vs masked sdpa  {str(dtype):15} rank {rank} {mode:5}"
                  f"  logprobs rel {rel(lp_new, lp_ref):.2e}  worst grad rel {worst_grad:.2e}")


def check_fused_lora(spec: str, device: Any, results: list[bool]) -> None:
    import torch
    from peft.tuners.lora.layer import Linear

    from cookbook_cli.engines.local.lora import fuse_adapters

    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 3e-2)):
        torch.manual_seed(0)
        model = model_for(spec, dtype, "sdpa", 8, device)
        fused = [m for m in model.modules() if isinstance(m, Linear)]
        ids = torch.randint(0, 512, (2, 33), device=device)

        def run() -> tuple[Any, dict[str, Any]]:
            model.zero_grad(set_to_none=True)
            logits = model(input_ids=ids, use_cache=False).logits.float()
            (logits * torch.linspace(-1, 1, logits.shape[-1], device=device)).sum().backward()
            return logits.detach().cpu(), {n: p.grad.float().cpu() for n, p in model.named_parameters() if p.requires_grad}

        out_fused, g_fused = run()
        for m in fused:
            m.__class__ = Linear  # peft's own forward
        out_peft, g_peft = run()
        worst = max(rel(g_fused[n], g_peft[n]) for n in g_peft)
        ok = bool(fused) and rel(out_fused, out_peft) < tol and worst < tol * 3
        results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'} fused LoRA vs peft  {str(dtype):15}  logits rel {rel(out_fused, out_peft):.2e}  worst grad rel {worst:.2e}")
        assert fuse_adapters(model) == len(fused)


def check_fused_adamw(device: Any, results: list[bool]) -> None:
    import torch

    torch.manual_seed(0)
    params = [torch.randn(257, 129, device=device) for _ in range(3)]
    grads = [torch.randn_like(p) for p in params]
    out = []
    for fused in (True, False):
        ps = [p.clone().requires_grad_(True) for p in params]
        opt = torch.optim.AdamW(ps, lr=1e-3, betas=(0.9, 0.95), eps=1e-12, weight_decay=0.0, fused=fused, foreach=None if fused else True)
        for _ in range(3):
            for p, g in zip(ps, grads, strict=True):
                p.grad = g.clone()
            opt.step()
        out.append(torch.cat([p.detach().flatten() for p in ps]))
    diff = float((out[0] - out[1]).abs().max())
    ok = diff < 1e-6
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} fused AdamW vs foreach, 3 steps  max abs diff {diff:.2e}")


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def time_attention(spec: str, device: Any, lengths: tuple[int, ...], repeats: int) -> None:
    """Forward + backward of one packed row: per-sequence causal sdpa against the masked sdpa."""
    import torch

    from cookbook_cli.engines.local.attention import PACKED_ATTENTION

    batch = batch_of(lengths, 512, seed=2)
    tokens = sum(lengths)
    for dtype in (torch.float32, torch.bfloat16):
        times = {}
        for impl in (PACKED_ATTENTION, "sdpa"):
            torch.manual_seed(0)
            model = model_for(spec, dtype, impl, 32, device)
            for i in range(repeats + 2):
                if i == 2:
                    synchronize(device)
                    start = time.perf_counter()
                logprobs_and_grads(model, batch, "flat", device, dtype)
            synchronize(device)
            times[impl] = (time.perf_counter() - start) / repeats
            del model
        print(f"time {str(dtype):15} {len(lengths)} sequences, {tokens} tokens, one row, LoRA r32:"
              f"  packed {tokens / times[PACKED_ATTENTION]:,.0f} tok/s, masked sdpa {tokens / times['sdpa']:,.0f} tok/s,"
              f"  packed/masked {times['sdpa'] / times[PACKED_ATTENTION]:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="small", help="random model shape (engines/local/shapes.py)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda", help="cpu runs the same checks here (slowly), to try the script")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this check runs on a GPU machine (--device cpu tries it here)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}")
    results: list[bool] = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"random:{args.shape}:{word_tokenizer(Path(tmp), 512)}"
        check_packed_attention(spec, device, results)
        check_fused_lora(spec, device, results)
        check_fused_adamw(device, results)
        time_attention(spec, device, (64,) * 32, args.repeats)
        time_attention(spec, device, (512,) * 8, args.repeats)
        time_attention(spec, device, (1000, 700, 300, 120, 60, 30, 20, 10) * 2, args.repeats)
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
