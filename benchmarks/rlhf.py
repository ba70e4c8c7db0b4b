"""The RLHF pipeline on a real model, small: SFT -> preference model -> RL
against it, on SmolLM2-135M-Instruct, offline, on the CPU.

The three stages are the commands docs/preference.md shows, each a run of
its own under --work (a finished stage's run is reused; an interrupted one
resumes with --if-exists resume):

1. sft: `train sl` on the sample conversations shipped with cookbook;
2. pm:  `train pm` on the shipped sample comparisons (30 held out), from the
   base model: held-out accuracy (both orders averaged) and position bias
   (the single-order rate of naming the first reply, less 0.5, and the
   accuracy gap between the better reply shown first and second), at step 0
   and at the end;
3. rl:  `train rl --env preference --init-from SFT env.judge=PM` on the sample
   prompts, with the `win_rate` evaluator (judge PM, baseline the SFT run)
   at step 0 and at the end: the policy's win rate against its start.

Too slow for the test suite (minutes on 2 CPU cores).

Run: python benchmarks/rlhf.py [--model smollm2-135m-instruct] [--work runs/rlhf-bench]
     [--sft-steps 10] [--pm-steps 24] [--rl-steps 6] [--max-tokens 32] [--eval-prompts 24]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from cookbook_command import cookbook  # noqa: E402  (benchmarks/, the script's folder)




def stage(work: Path, name: str, *words: str) -> tuple[Path, float]:
    """Train into work/NAME, resuming a run left there; a finished one is reused."""
    run = work / name
    done = run / "bench_wall.txt"
    if done.is_file():
        return run, float(done.read_text())
    wall = cookbook(work / "commands.log", "train", *words, "--log-dir", str(run), "--if-exists", "resume")
    done.write_text(f"{wall:.1f}")
    return run, wall


def evaluations(run: Path, key: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if key in r]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--work", default="runs/rlhf-bench")
    p.add_argument("--sft-steps", type=int, default=10)
    p.add_argument("--pm-steps", type=int, default=24)
    p.add_argument("--rl-steps", type=int, default=6)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--eval-prompts", type=int, default=24, help="sample prompts the win rate is measured on")
    args = p.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = ["--model", args.model]

    sft, sft_wall = stage(work, "sft", "sl", *model, "--max-steps", str(args.sft_steps), "--eval-every", "0")
    print(f"sft: {args.sft_steps} steps in {sft_wall:.0f}s -> {sft}")

    pm, pm_wall = stage(
        work, "pm", "pm", *model, "--max-steps", str(args.pm_steps), "--batch-size", "8", "--eval-every", str(args.pm_steps),
        "--save-every", "8", "dataset.test_size=30",
    )
    pm_evals = evaluations(pm, "test/accuracy")
    first, last = pm_evals[0], pm_evals[-1]
    print(f"pm: {args.pm_steps} steps in {pm_wall:.0f}s, {int(last['test/pairs'])} held-out pairs")
    for key, label in (
        ("test/accuracy", "accuracy (both orders)"), ("test/accuracy_one_order", "accuracy (one order)"),
        ("test/first_rate_minus_half", "first-reply rate - 0.5"), ("test/order_gap", "order gap"),
    ):
        print(f"  {label:24s} {first[key]:+.3f} -> {last[key]:+.3f}")

    judge = f"judge={pm} baseline={sft} max_tokens={args.max_tokens} max_examples={args.eval_prompts}"
    rl, rl_wall = stage(
        work, "rl", "rl", "--env", "preference", *model, "--init-from", str(sft), "--group-size", "4", "--groups-per-batch", "4",
        "--max-steps", str(args.rl_steps), "--save-every", "2", f"env.judge={pm}", f"max_tokens={args.max_tokens}",
        f"eval_every={args.rl_steps}", f"evaluators=win_rate {judge}",
    )
    wins = evaluations(rl, "test/win_rate/win_rate")
    print(f"rl: {args.rl_steps} steps in {rl_wall:.0f}s, win rate against the SFT start on {args.eval_prompts} sample prompts, judged by the pm")
    print(f"  win rate    {wins[0]['test/win_rate/win_rate']:.3f} -> {wins[-1]['test/win_rate/win_rate']:.3f}")
    print(f"  preference  {wins[0]['test/win_rate/preference']:.3f} -> {wins[-1]['test/win_rate/preference']:.3f}")


if __name__ == "__main__":
    main()
