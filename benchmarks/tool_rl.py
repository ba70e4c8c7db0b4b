"""RL teaches a real small model to use a tool: the `calculator` env on
SmolLM2-135M-Instruct, offline, on the CPU.

Prints, on held-out problems of the env's test split (greedy, one attempt
each), before -> after training: accuracy (final answer's last number equals
the reference), the share of episodes that called a tool, the share of turns
with calls, tool errors per episode; and the training reward and tool use of
the first and last steps, with wall times. Each part drives the public CLI
(`cookbook eval ... env`, `cookbook train rl`) in a subprocess; every command
and its output go to WORK/commands.log, and a finished run is reused.

Slow: minutes per step on 2 busy CPU cores (each episode is several turns of
a 135M model over a ~400-token prompt); keep it small.

Run: python benchmarks/tool_rl.py [--model smollm2-135m-instruct] [--steps 10] [--group-size 4]
     [--groups-per-batch 2] [--eval-problems 10] [--max-tokens 48] [--max-turns 2] [--lr LR] [--work runs/tool-rl]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHOWN = (("env/correct", "accuracy"), ("env/used_tool", "episodes calling a tool"),
         ("env/tool_call_rate", "turns with tool calls"), ("env/tool_errors", "tool errors per episode"))


def cookbook(log: Path, *words: str) -> float:
    """Run one cookbook command (a failure stops the benchmark); its wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cookbook_cli", *words], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    wall = time.perf_counter() - start
    with log.open("a") as f:
        f.write(f"$ cookbook {' '.join(words)}  # {wall:.0f}s, exit {proc.returncode}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        sys.exit(f"cookbook {' '.join(words)} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return wall


def env_words(args: argparse.Namespace) -> list[str]:
    return ["env=calculator", f"env.max_turns={args.max_turns}"]


def evaluate(args: argparse.Namespace, work: Path, source: list[str], name: str) -> tuple[dict[str, float], float]:
    out = work / "eval" / name
    wall = cookbook(work / "commands.log", "eval", *source, "--out", str(out), "--json", "env", *env_words(args),
                    "num_samples=1", "temperature=0", f"max_groups={args.eval_problems}", f"max_tokens={args.max_tokens}")
    result = json.loads((out / "env" / "result.json").read_text())
    return metrics_of(result), wall


def metrics_of(result: Any) -> dict[str, float]:
    """The metrics dict holding env/correct, wherever the result JSON nests it."""
    if isinstance(result, dict):
        if "env/correct" in result:
            return result
        result = list(result.values())
    for value in result if isinstance(result, list) else []:
        found = metrics_of(value)
        if found:
            return found
    return {}


def first_last(run: Path, key: str) -> tuple[float, float]:
    values = [r[key] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if isinstance(r.get(key), (int, float))]
    return (values[0], values[-1]) if values else (float("nan"), float("nan"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--groups-per-batch", type=int, default=2)
    p.add_argument("--eval-problems", type=int, default=10)
    p.add_argument("--max-tokens", type=int, default=48, help="sampled tokens per turn")
    p.add_argument("--max-turns", type=int, default=2)
    p.add_argument("--lr", default="", help="default: the model's rule (cookbook models info)")
    p.add_argument("--work", default="runs/tool-rl")
    args = p.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = ["--model", args.model]
    print(f"calculator env on {args.model}: {args.steps} RL steps x {args.groups_per_batch} problems x {args.group_size}, "
          f"{args.eval_problems} held-out problems greedy, {args.max_turns} turns of {args.max_tokens} tokens")

    before, wall_before = evaluate(args, work, model, "before")
    run = work / "run"
    done = run / "bench_wall.txt"
    if not done.is_file():
        lr = ["--lr", args.lr] if args.lr else []
        wall = cookbook(work / "commands.log", "train", "rl", *model, "--env", "calculator", "--log-dir", str(run), "--if-exists", "overwrite",
                        "--max-steps", str(args.steps), "--group-size", str(args.group_size), "--groups-per-batch", str(args.groups_per_batch),
                        "--save-every", "0", f"max_tokens={args.max_tokens}", f"env.max_turns={args.max_turns}", *lr)
        done.write_text(f"{wall:.1f}")
    wall_train = float(done.read_text())
    after, wall_after = evaluate(args, work, ["--run", str(run)], "after")

    for key, label in SHOWN:
        print(f"  held-out {label:<26} {before.get(key, float('nan')):.3f} -> {after.get(key, float('nan')):.3f}")
    for key, label in (("env/reward/mean", "reward"), ("env/used_tool", "episodes calling a tool")):
        first, last = first_last(run, key)
        print(f"  train {label:<29} {first:.3f} -> {last:.3f} (first -> last step)")
    print(f"  wall: train {wall_train:.0f}s, eval before {wall_before:.0f}s, after {wall_after:.0f}s")


if __name__ == "__main__":
    main()
