"""DPO on the local engine: what a step costs beside an SFT step on the same
tokens, and beside TRL's DPOTrainer on the same model, pairs, batch and LoRA rank.

    python benchmarks/dpo.py [--model random:small:llama3] [--pairs 8] [--steps 6] [--rank 32]
                             [--trl-python /path/to/trl-venv/bin/python]

- DPO step: one forward_backward_custom with the DPO loss (the reference's sums
  precomputed, as `train dpo` caches them) and one optim_step;
- SFT step: one forward_backward with cross_entropy and one optim_step on the
  very same datums (both sides of every pair);
- the two arms alternate over the same batches of the shipped sample
  comparisons; medians of `--rounds` rounds. Target: DPO <= 1.2x the SFT time.
- TRL (in its own interpreter, e.g. a venv with `pip install torch==2.13.0 trl`):
  DPOTrainer on the same model folder, the same pairs as text, the same batch
  and LoRA rank, its defaults otherwise (the reference is the adapter-free
  model, computed every step). Without an interpreter with trl the column is
  skipped with a note. Target: faster than TRL.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_engine import save_random_model  # noqa: E402  (a sibling benchmark script)


def batches_of(folder: str, pairs: int, count: int) -> list[Any]:
    from cookbook_cli.preference.builders import ComparisonsBuilder
    from cookbook_cli.renderers import get_renderer

    renderer = get_renderer("llama3", folder)
    train, _ = ComparisonsBuilder(test_size=0).build(renderer, pairs, 2048, 0)
    return [train.build_batch(i % len(train)) for i in range(count)]


def run_local(args: argparse.Namespace, folder: str, batches: list[Any]) -> tuple[float, float, float]:
    """(DPO s/step, SFT s/step, tokens per step): medians over rounds."""
    from tinker import types

    from cookbook_cli.engines.local.service import LocalServiceClient
    from cookbook_cli.preference.loss import dpo_loss_fn, pair_logprob_sums

    service = LocalServiceClient()
    client = service.create_lora_training_client(folder, rank=args.rank, seed=0)
    refs = []
    for b in batches:  # the reference's sums, once (as train dpo caches them)
        out = client.forward(b.datums, "cross_entropy").result()
        refs.append(pair_logprob_sums(b.datums, [o["logprobs"] for o in out.loss_fn_outputs]))
    adam = types.AdamParams(learning_rate=1e-4)

    def dpo(i: int) -> None:
        client.forward_backward_custom(batches[i].datums, dpo_loss_fn(refs[i], 0.1)).result()
        client.optim_step(adam).result()

    def sft(i: int) -> None:
        client.forward_backward(batches[i].datums, "cross_entropy").result()
        client.optim_step(adam).result()

    dpo(0), sft(0)  # warm-up
    times: dict[str, list[float]] = {"dpo": [], "sft": []}
    for _ in range(args.rounds):
        for name, arm in (("dpo", dpo), ("sft", sft)):
            t0 = time.perf_counter()
            for i in range(1, len(batches)):
                arm(i)
            times[name].append((time.perf_counter() - t0) / (len(batches) - 1))
    service.close()
    tokens = statistics.mean(b.stats.tokens for b in batches[1:])
    return statistics.median(times["dpo"]), statistics.median(times["sft"]), tokens


def find_trl_python(args: argparse.Namespace) -> str | None:
    import importlib.util

    if args.trl_python:
        return args.trl_python
    return sys.executable if importlib.util.find_spec("trl") is not None else None


def run_trl(args: argparse.Namespace, folder: str, batches: list[Any]) -> float | None:
    """TRL DPOTrainer's seconds per step (steps 2..), or None when skipped."""
    from cookbook_cli.tokenizers import get_tokenizer

    python = find_trl_python(args)
    if python is None:
        print("  TRL: skipped, trl is not installed here (pip install trl into a venv and pass --trl-python)")
        return None
    tok = get_tokenizer(folder)
    rows = []
    for b in batches:
        for c, r in zip(b.chosen, b.rejected, strict=True):
            full_c = c.model_input.to_ints() + c.loss_fn_inputs["target_tokens"].to_numpy().tolist()[-1:]
            full_r = r.model_input.to_ints() + r.loss_fn_inputs["target_tokens"].to_numpy().tolist()[-1:]
            n = 0
            while n < min(len(full_c), len(full_r)) and full_c[n] == full_r[n]:
                n += 1
            rows.append({"prompt": tok.decode(full_c[:n]), "chosen": tok.decode(full_c[n:]), "rejected": tok.decode(full_r[n:])})
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"folder": folder, "rows": rows, "pairs": args.pairs, "rank": args.rank,
                                    "steps": len(batches), "output_dir": tmp}), encoding="utf-8")
        proc = subprocess.run([python, __file__, "--trl-worker", str(spec)], capture_output=True, text=True, env=dict(os.environ))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"  TRL DPOTrainer: failed ({(proc.stderr.strip().splitlines() or ['no output'])[-1]})")
        return None
    result = json.loads(lines[-1])
    print(f"  TRL DPOTrainer: {result['note']}")
    return float(result["seconds_per_step"])


def trl_worker(spec_path: str) -> None:
    """Runs under the TRL interpreter: train, time steps 2.., print one JSON line."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PreTrainedTokenizerFast, TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import DPOConfig, DPOTrainer

    hf_logging.disable_progress_bar()
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    tokenizer = PreTrainedTokenizerFast.from_pretrained(spec["folder"])
    data = Dataset.from_list(spec["rows"])
    config = DPOConfig(
        output_dir=spec["output_dir"], per_device_train_batch_size=spec["pairs"], max_steps=spec["steps"], learning_rate=1e-4,
        beta=0.1, use_cpu=not torch.cuda.is_available(), report_to="none", save_strategy="no", logging_strategy="no",
        disable_tqdm=True,
    )
    marks: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *a: Any, **k: Any) -> None:
            marks.append(time.perf_counter())

    trainer = DPOTrainer(
        model=spec["folder"], args=config, train_dataset=data, processing_class=tokenizer,
        peft_config=LoraConfig(r=spec["rank"], lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"), callbacks=[Timer()],
    )
    trainer.train()
    per_step = (marks[-1] - marks[0]) / (len(marks) - 1)
    note = f"{len(marks) - 1} timed steps of {spec['pairs']} pairs, {per_step:.3f} s/step, precompute_ref_log_probs={config.precompute_ref_log_probs}"
    print(json.dumps({"seconds_per_step": per_step, "note": note}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="random:small:meta-llama/Llama-3.2-1B-Instruct", help="a random:<shape>:<tokenizer> model")
    parser.add_argument("--pairs", type=int, default=8, help="pairs per step")
    parser.add_argument("--steps", type=int, default=6, help="batches per round (the first is a warm-up)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--trl-python", default=None, help="an interpreter with trl installed (default: this one, if it has trl)")
    parser.add_argument("--trl-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trl_worker:
        trl_worker(args.trl_worker)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        save_random_model(args.model, folder)
        batches = batches_of(str(folder), args.pairs, args.steps)
        print(f"DPO on {args.model}, LoRA rank {args.rank}, {args.pairs} pairs per step, {os.cpu_count()} CPUs")
        dpo, sft, tokens = run_local(args, str(folder), batches)
        print(f"  local engine DPO step   {dpo:.3f} s  ({1 / dpo:.2f} steps/s, {tokens / dpo:.0f} trained tokens/s)")
        print(f"  local engine SFT step   {sft:.3f} s  ({1 / sft:.2f} steps/s, {tokens / sft:.0f} tokens/s) on the same {tokens:.0f} tokens")
        print(f"  ratio DPO/SFT time: {dpo / sft:.3f} (target <= 1.2)")
        trl = run_trl(args, str(folder), batches)
        if trl is not None:
            print(f"  ratio TRL/local DPO time: {trl / dpo:.2f} (target > 1: the local engine is faster)")


if __name__ == "__main__":
    main()
