"""Every method on a real model: SFT, RL, DPO and distillation make
SmolLM2-135M-Instruct better on held-out data, offline, on the CPU.

Each method drives the public CLI (`cookbook train sl|rl|dpo|distill`,
`cookbook eval`, `cookbook sample`, `cookbook chat`) in a subprocess and
prints before -> after on data the training never saw, with wall times:

- sft: "Write 347 in words." -> "three hundred forty-seven", a task the base
  model fails (it talks about the number instead). Numbers 0-999, a seeded
  --heldout held out; exact match of greedy replies (case and a final period ignored).
- rl: the `arithmetic` env (sums of two operands up to --max-operand, one
  solved example first): greedy accuracy (first integer) and clean-format
  rate (just the number, ended at the stop sequence) on the env's held-out
  test problems (`cookbook eval ... env`), base against the trained run.
- dpo: a seeded --dpo-pairs of the shipped sample preferences, a quarter held out: the run's held-out
  preference accuracy and margin at step 0 and at the end, and greedy replies
  before -> after on prompts of the preferred kinds with words the data never
  uses (share in the preferred form: a numbered list, a one-word colour).
- distill: the rl run as teacher, the base model as student, prompts from the
  same env, fewer steps than rl took: teacher KL first -> last and the
  student's held-out accuracy beside the base's and the teacher's (the share
  of the teacher's gain it recovers). Needs the rl run (run rl first or with it).
- chat: a few greedy `cookbook chat` replies of the trained models.

Too slow for the test suite: each method is minutes on 2 CPU cores. Runs go
to --work (default runs/real-models); a finished method's run is reused
(delete its folder to retrain).

Run: python benchmarks/real_models.py [--only sft,rl,dpo,distill,chat] [--model smollm2-135m-instruct]
     [--renderer R] [--work DIR] [--lr LR] [--sft-steps 60] [--rl-steps 16] [--distill-steps 6] [--dpo-steps 8] [--dpo-pairs 96]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
METHODS = ("sft", "rl", "dpo", "distill", "chat")
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


class Bench:
    """Where the runs go, the model under test, and a log of every command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.log = self.work / "commands.log"
        self.model_args = ["--model", args.model] + (["--renderer", args.renderer] if args.renderer else [])

    def cookbook(self, *words: str, stdin: str | None = None) -> tuple[str, float]:
        """Run one cookbook command; its output and wall seconds. A failure stops the benchmark."""
        cmd = [sys.executable, "-m", "cookbook_cli", *words]
        start = time.perf_counter()
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        wall = time.perf_counter() - start
        with self.log.open("a") as f:
            f.write(f"$ cookbook {' '.join(words)}  # {wall:.0f}s, exit {proc.returncode}\n{proc.stdout}{proc.stderr}\n")
        if proc.returncode != 0:
            sys.exit(f"cookbook {' '.join(words)} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
        return proc.stdout, wall

    def train(self, recipe: str, name: str, *words: str) -> tuple[Path, float]:
        """Train once into work/NAME; a finished run there is reused (wall time from its first run)."""
        run = self.work / name
        done = run / "bench_wall.txt"
        if done.is_file():
            return run, float(done.read_text())
        lr = ["--lr", self.args.lr] if self.args.lr else []
        _, wall = self.cookbook("train", recipe, "--log-dir", str(run), "--if-exists", "overwrite", *lr, *words)
        done.write_text(f"{wall:.1f}")
        return run, wall

    def replies(self, source: list[str], prompts: list[str], name: str, max_tokens: int) -> tuple[list[str], float]:
        """Greedy `cookbook sample` replies to single-turn prompts."""
        path = self.work / f"{name}-prompts.jsonl"
        write_jsonl(path, [{"messages": [{"role": "user", "content": p}]} for p in prompts])
        out = self.work / f"{name}-replies.jsonl"  # an interrupted benchmark resumes it
        _, wall = self.cookbook("sample", *source, "--prompts", str(path), "--out", str(out), "-t", "0", "--max-tokens", str(max_tokens), "--seed", "0")
        return [row["messages"][-1]["content"] for row in read_jsonl(out)], wall

    def env_eval(self, source: list[str], name: str) -> tuple[dict[str, float], float]:
        """Greedy accuracy and format rate on the arithmetic env's held-out problems."""
        out = self.work / "eval" / name
        stdout, wall = self.cookbook(
            "eval", *source, "--out", str(out), "--json", "env", "env=arithmetic", f"env.max_operand={self.args.max_operand}",
            "num_samples=1", "temperature=0", f"max_groups={self.args.eval_problems}",
        )
        result = json.loads((out / "env" / "result.json").read_text()) if (out / "env" / "result.json").is_file() else json.loads(stdout)
        metrics = find_metrics(result)
        # The env grades the first integer, so "21 + 44 = 65" is wrong: the last integer tells the sum apart from the format.
        logs = [log for row in read_jsonl(out / "env" / "trajectories.jsonl") for log in row["logs"]]
        last = [re.findall(r"-?\d+", log["response"])[-1:] == [log["reference"]] for log in logs]
        return {"accuracy": metrics["env/correct"], "format": metrics["env/format"], "last integer": sum(last) / len(last)}, wall


def find_metrics(result: Any) -> dict[str, float]:
    """The metrics dict holding env/correct, wherever the result JSON nests it."""
    if isinstance(result, dict):
        if "env/correct" in result:
            return result
        for value in result.values():
            found = find_metrics(value)
            if found:
                return found
    if isinstance(result, list):
        for value in result:
            found = find_metrics(value)
            if found:
                return found
    return {}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metric_rows(run: Path) -> list[dict[str, Any]]:
    return read_jsonl(run / "metrics.jsonl")


def first_last(run: Path, key: str) -> tuple[float, float]:
    values = [row[key] for row in metric_rows(run) if isinstance(row.get(key), (int, float))]
    if not values:
        sys.exit(f"{run}/metrics.jsonl has no {key!r}")
    return values[0], values[-1]


def number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10 - 2] + (f"-{_ONES[n % 10]}" if n % 10 else "")
    return f"{_ONES[n // 100]} hundred" + (f" {number_words(n % 100)}" if n % 100 else "")


def normalized(text: str) -> str:
    return text.strip().rstrip(".").strip().lower()


def show(label: str, before: float, after: float, unit: str = "") -> None:
    print(f"  {label:<34} {before:8.3f}{unit} -> {after:8.3f}{unit}")


def show_replies(prompts: list[str], before: list[str], after: list[str], n: int = 3) -> None:
    for p, b, a in list(zip(prompts, before, after))[:n]:
        print(f"    {p!r}\n      before: {b[:100]!r}\n      after:  {a[:100]!r}")


def sft(b: Bench) -> None:
    print("SFT: numbers in words, held-out numbers, greedy exact match")
    numbers = list(range(1000))
    random.Random(0).shuffle(numbers)
    held, train = numbers[: b.args.heldout], numbers[b.args.heldout :]
    data = b.work / "number-words.jsonl"
    write_jsonl(data, [{"messages": [{"role": "user", "content": f"Write {n} in words."}, {"role": "assistant", "content": number_words(n)}]} for n in train])
    prompts = [f"Write {n} in words." for n in held]

    def score(replies: list[str]) -> float:
        return sum(normalized(r) == number_words(n) for r, n in zip(replies, held)) / len(held)

    base, wall_base = b.replies(b.model_args, prompts, "sft-base", 12)
    run, wall = b.train("sl", "sft", *b.model_args, "--dataset", str(data), "--max-steps", str(b.args.sft_steps), "--batch-size", "8",
                        "--eval-every", "0", "--save-every", "0", "dataset.test_size=0")
    after, wall_after = b.replies(["--run", str(run)], prompts, "sft-after", 12)
    loss = first_last(run, "loss") if any("loss" in r for r in metric_rows(run)) else first_last(run, "train_loss")
    show("held-out exact match", score(base), score(after))
    show("train loss", *loss)
    print(f"  wall: train {wall:.0f}s ({b.args.sft_steps} steps x 8), sample base {wall_base:.0f}s, after {wall_after:.0f}s")
    show_replies(prompts, base, after)


def rl(b: Bench) -> Path:
    print(f"RL: arithmetic env (operands 0-{b.args.max_operand}), {b.args.eval_problems} held-out problems, greedy")
    base, wall_base = b.env_eval(b.model_args, "rl-base")
    run, wall = b.train("rl", "rl", *b.model_args, "--env", "arithmetic", "--max-steps", str(b.args.rl_steps), "--group-size", str(b.args.group_size),
                        "--groups-per-batch", str(b.args.groups_per_batch), f"env.max_operand={b.args.max_operand}", "--save-every", "0")
    after, wall_after = b.env_eval(["--run", str(run)], "rl-after")
    show("held-out accuracy (first integer)", base["accuracy"], after["accuracy"])
    show("held-out clean format", base["format"], after["format"])
    show("held-out sum as the last integer", base["last integer"], after["last integer"])
    show("train reward (first -> last step)", *first_last(run, "env/reward/mean"))
    lr = json.loads((run / "config.json").read_text(encoding="utf-8"))["learning_rate"]
    print(f"  learning rate {lr:.3g} ({'--lr' if b.args.lr else 'the recipe default, cookbook models info'})")
    print(f"  wall: train {wall:.0f}s ({b.args.rl_steps} steps x {b.args.groups_per_batch} problems x {b.args.group_size}), "
          f"eval base {wall_base:.0f}s, after {wall_after:.0f}s")
    return run


def distill(b: Bench) -> None:
    teacher = b.work / "rl"
    if not (teacher / "bench_wall.txt").is_file():
        rl(b)
    print(f"Distillation: the rl run as teacher, the base model as student, {b.args.distill_steps} steps (rl took {b.args.rl_steps})")
    base, _ = b.env_eval(b.model_args, "rl-base")
    taught, _ = b.env_eval(["--run", str(teacher)], "rl-after")
    run, wall = b.train("distill", "distill", "--teacher", str(teacher), *b.model_args, "--env", "arithmetic", f"env.max_operand={b.args.max_operand}",
                        "--max-steps", str(b.args.distill_steps), "--group-size", str(b.args.group_size), "--groups-per-batch", str(b.args.groups_per_batch),
                        "--save-every", "0")
    student, wall_eval = b.env_eval(["--run", str(run)], "distill-after")
    show("teacher KL (first -> last step)", *first_last(run, "teacher_kl"))
    for key in ("accuracy", "format", "last integer"):
        gain = taught[key] - base[key]
        share = f"  ({(student[key] - base[key]) / gain:.0%} of the teacher's gain)" if abs(gain) > 1e-9 else ""
        print(f"  held-out {key:<18} base {base[key]:.3f}, teacher {taught[key]:.3f}, student {student[key]:.3f}{share}")
    print(f"  wall: train {wall:.0f}s, eval {wall_eval:.0f}s")


def dpo(b: Bench) -> None:
    from importlib import resources

    pairs, held = b.args.dpo_pairs, b.args.dpo_pairs // 4
    print(f"DPO: {pairs} of the sample preferences (seeded), {held} held out")
    rows = (resources.files("cookbook_cli") / "data" / "sample_preferences.jsonl").read_text().splitlines()
    random.Random(0).shuffle(rows)
    data = b.work / "preferences.jsonl"
    data.write_text("\n".join(rows[:pairs]) + "\n")
    run, wall = b.train("dpo", "dpo", *b.model_args, "--dataset", str(data), "--max-steps", str(b.args.dpo_steps), "--batch-size", "8",
                        "--eval-every", str(b.args.dpo_steps // 2 or 1), "--save-every", "0", f"dataset.test_size={held}")
    show("held-out preference accuracy", *first_last(run, "test/accuracy"))
    show("held-out margin", *first_last(run, "test/margin"))
    show("train loss", *first_last(run, "dpo_loss"))
    # Prompts of the preferred kinds, with words the preference data never uses.
    items = ["cherry", "violin", "desert", "candle", "rocket", "pillow", "harbor", "pepper"]
    lists = [f"List {a}, {c} and {d}." for a, c, d in zip(items, items[3:] + items[:3], items[5:] + items[:5])][:2]
    colors = [f"Name a color like {c}." for c in ("purple", "orange")]
    greetings = [f"Hi, I am {n}." for n in ("Oskar", "Priya")]
    prompts = lists + colors + greetings

    def preferred(prompt: str, reply: str) -> bool:
        if prompt.startswith("List"):
            return re.fullmatch(r"1\. \w+ 2\. \w+ 3\. \w+\.?", reply.strip()) is not None
        if prompt.startswith("Name a color"):
            return re.fullmatch(r"\w+\.?", reply.strip()) is not None
        return reply.strip().startswith("Hello")

    before, _ = b.replies(b.model_args, prompts, "dpo-base", 24)
    after, wall_after = b.replies(["--run", str(run)], prompts, "dpo-after", 24)
    share = [sum(preferred(p, r) for p, r in zip(prompts, replies)) / len(prompts) for replies in (before, after)]
    show("replies in the preferred form", *share)
    print(f"  wall: train {wall:.0f}s ({b.args.dpo_steps} steps x 8 pairs), sample {wall_after:.0f}s")
    idx = [0, 2, 4]
    show_replies([prompts[i] for i in idx], [before[i] for i in idx], [after[i] for i in idx])


def chat(b: Bench) -> None:
    print("Chat: greedy replies of the trained models (one `cookbook chat` each, its task then a general question)")
    asks = {"sft": "Write 512 in words.", "rl": "What is 23 + 41?", "dpo": "Name a color like green.", "distill": "What is 17 + 35?"}
    for name, ask in asks.items():
        run = b.work / name
        if not (run / "bench_wall.txt").is_file():
            continue
        questions = [ask, "What is the capital of France?"]
        out, wall = b.cookbook("chat", "--run", str(run), "--temperature", "0", "--max-tokens", "40", stdin="\n/reset\n".join(questions) + "\n")
        replies = [line.removeprefix("assistant: ") for line in out.splitlines() if line.startswith("assistant: ")]
        for question, reply in zip(questions, replies):
            print(f"  {name}: {question!r} -> {reply[:120]!r}")
        print(f"  ({wall:.0f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--renderer", default=None, help="default: the model's")
    parser.add_argument("--work", default="runs/real-models")
    parser.add_argument("--heldout", type=int, default=30, help="sft: held-out numbers")
    parser.add_argument("--sft-steps", type=int, default=60)
    parser.add_argument("--rl-steps", type=int, default=16)
    parser.add_argument("--distill-steps", type=int, default=6)
    parser.add_argument("--dpo-steps", type=int, default=8)
    parser.add_argument("--dpo-pairs", type=int, default=96, help="dpo: pairs of the sample used, a quarter held out")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--groups-per-batch", type=int, default=8)
    parser.add_argument("--max-operand", type=int, default=99, help="rl/distill: the env's largest operand (its default)")
    parser.add_argument("--eval-problems", type=int, default=48, help="rl/distill: held-out problems")
    parser.add_argument("--lr", default=None, help="learning rate of every training run; default: the model's (cookbook models info)")
    args = parser.parse_args()
    chosen = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    bench = Bench(args)
    print(f"model {args.model}, work {bench.work}, {os.cpu_count()} CPUs (every command is logged to {bench.log})")
    for name in METHODS:
        if name in chosen:
            start = time.perf_counter()
            {"sft": sft, "rl": rl, "dpo": dpo, "distill": distill, "chat": chat}[name](bench)
            print(f"  ({name}: {time.perf_counter() - start:.0f}s in all)\n", flush=True)


if __name__ == "__main__":
    main()
