"""RL teaches a real small model to use a tool: the `calculator` env on
SmolLM2-135M-Instruct, offline, on the CPU.

The base model never writes a tool call here (it works sums out in prose), so
RL alone has nothing to reinforce. `--warmup N` (default 64) first fine-tunes
it (`cookbook train sl`, one epoch) on N solved tool conversations of the
env's TRAIN split: each is the env's own opening messages (system prompt with
the tool specs, its solved example, the question) then a calculator call
whose result the library's `calculator` tool computes, and the answer. A small
N teaches the call format but not every problem's expression, leaving
held-out accuracy below 1 for RL to raise; RL then starts from that run
(`cookbook train rl ... init_from=WARMUP`). `--warmup 0`: RL from the base
model. docs/tools.md (Learning) records what these defaults measured.

RL: `--steps` steps of `--groups-per-batch` problems x `--group-size`
attempts (default 12 x 2 x 8: eight attempts a problem so that a rarely
sampled right answer lands beside wrong ones), at `--lr-scale` (default 1)
times the model's RL learning rate
(`cookbook models info`) unless `--lr` is given; groups whose attempts all
earned the same reward (no advantage) are not trained on.

Prints, on held-out problems of the env's test split, base -> warm-up ->
RL-trained: accuracy (the mean reward: 1 when the final answer's last number
equals the reference) over `--eval-samples` attempts a problem sampled at
`--eval-temperature` (default 4 at 1.0: RL raises the reward of the attempts
it samples, and greedy decoding hides a policy that became surer of answers
it already ranked first; `--eval-temperature 0`: one greedy attempt), pass@K,
the share of malformed replies (cut off at --max-tokens), of episodes that
called a tool and of turns with calls, tool errors per episode; how many
held-out problems RL's model scores higher than its starting point and
lower; the training reward and tool use of every RL step (and the means of the first
and last three); and the wall times. Each part drives the public CLI
(`cookbook eval ... env`, `cookbook train sl`, `cookbook train rl`) in a
subprocess; every command and its output go to WORK/commands.log, and a
finished run or evaluation is reused.

Slow: 35-80 s per RL step on 2 idle CPU cores, minutes when they are busy
(each episode is two turns of a 135M model over a ~400-token prompt); about
19 minutes in all for the defaults.

Run: python benchmarks/tool_rl.py [--model smollm2-135m-instruct] [--warmup 64] [--steps 12] [--group-size 8]
     [--groups-per-batch 2] [--eval-problems 20] [--eval-temperature 1 --eval-samples 4] [--max-tokens 64] [--max-turns 2] [--lr-scale 1 | --lr LR]
     [--seed 0] [--work runs/tool-rl]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from cookbook_command import cookbook  # noqa: E402  (benchmarks/, the script's folder)
# `reward` is over every episode; env/correct only over those the env graded (not a malformed reply's).
SHOWN = (("reward", "accuracy"), ("env/malformed", "malformed replies"), ("env/used_tool", "episodes calling a tool"),
         ("env/tool_call_rate", "turns with tool calls"), ("env/tool_errors", "tool errors per episode"))
BY_OPERATIONS = (("operations/1", "  one-operation problems"), ("operations/2", "  two-operation problems"))


def env_words(args: argparse.Namespace) -> list[str]:
    return ["env=calculator", f"env.max_turns={args.max_turns}"]


def eval_mode(args: argparse.Namespace) -> str:
    """How held-out problems are attempted, as a folder name: greedy, or K samples at temperature T."""
    return "greedy" if args.eval_temperature == 0 else f"t{args.eval_temperature:g}x{args.eval_samples}"


class HeldOut(NamedTuple):
    """One evaluation of held-out problems: its metrics, each problem's reward, its wall seconds."""

    metrics: dict[str, float]
    problems: dict[str, float]
    wall: float


def evaluate(args: argparse.Namespace, work: Path, source: list[str], name: str) -> HeldOut:
    """Held-out problems attempted by `source` (a model or a run), as `eval_mode` says; reused when finished."""
    out = work / "eval" / f"{name}-{eval_mode(args)}"
    done = out / "bench_wall.txt"
    if not done.is_file():
        done.write_text(f"{run_eval(args, work, source, out):.1f}")
    rows = trajectory_rows(out)
    return HeldOut(held_out_metrics(out, rows), per_problem(rows), float(done.read_text()))


def run_eval(args: argparse.Namespace, work: Path, source: list[str], out: Path) -> float:
    pass_k = sorted({1, args.eval_samples})
    wall = cookbook(work / "commands.log", "eval", *source, "--out", str(out), "--json", "env", *env_words(args),
                    f"num_samples={args.eval_samples}", f"temperature={args.eval_temperature}",
                    f"pass_k=[{','.join(map(str, pass_k))}]", f"max_groups={args.eval_problems}", f"max_tokens={args.max_tokens}")
    return wall


def trajectory_rows(out: Path) -> list[dict[str, Any]]:
    """The evaluation's problems: id, each attempt's reward and logs."""
    return [json.loads(line) for line in (out / "env" / "trajectories.jsonl").read_text().splitlines()]


def held_out_metrics(out: Path, rows: list[dict[str, Any]]) -> dict[str, float]:
    """An evaluation's metrics, with its accuracy on one- and two-operation problems (`rows`) apart."""
    metrics = dict(metrics_of(json.loads((out / "env" / "result.json").read_text())))
    by_count: dict[int, list[float]] = {}
    for row in rows:
        # A reply cut off before its end has no grading logs; another attempt's name the problem.
        question = next((log["question"] for log in row.get("logs", []) if "question" in log), None)
        expression = expression_for(question) if question else None
        if expression is not None:
            by_count.setdefault(operation_count(expression), []).extend(row["rewards"])
    metrics.update({f"operations/{n}": mean(rewards) for n, rewards in by_count.items()})
    return metrics


def operation_count(expression: str) -> int:
    return len(re.findall(r"[-+*/]", expression))


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


# How each shipped problem's wording maps to the calculator expression that solves it.
_EXPRESSIONS = (
    (re.compile(r"shares (\d+) \w+ equally among (\d+)"), "{0} / {1}"),
    (re.compile(r"(\d+) \w+ in the morning and (\d+) \w+ in the evening, every day for (\d+)"), "({0} + {1}) * {2}"),
    (re.compile(r"buys (\d+) \w+ at (\d+) \w+ each and pays with (\d+)"), "{2} - {0} * {1}"),
    (re.compile(r"has (\d+) \w+ with (\d+) \w+ in each"), "{0} * {1}"),
    (re.compile(r"are (\d+) \w+ holding (\d+) \w+ each\. (\d+) \w+ are sold"), "{0} * {1} - {2}"),
)


def expression_for(question: str) -> str | None:
    for pattern, form in _EXPRESSIONS:
        if found := pattern.search(question):
            return form.format(*found.groups())
    return None


def warmup_conversations(model: str, n: int) -> list[dict[str, Any]]:
    """Up to `n` solved tool conversations over the calculator env's train split
    (never its test split), opening exactly as the env's episodes do. A row is
    kept only when the calculator's result is its reference answer."""
    from cookbook_cli.conversations import Conversation
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.rl.calculator_env import CalculatorBuilder
    from cookbook_cli.rl.tool_env import number_matches, solved_example
    from cookbook_cli.rl.types import EnvContext
    from cookbook_cli.tools import get_tool

    builder = CalculatorBuilder()
    renderer = get_renderer("smollm2", tokenizer_for_model(model, "local"))
    train, _test = builder(EnvContext("calculator", renderer, renderer.tokenizer, group_size=1, groups_per_batch=1))
    calculator = get_tool("calculator")
    out: list[dict[str, Any]] = []
    for row in train.rows:
        expression = expression_for(row["question"])
        if expression is None:
            continue
        result = str(calculator(expression=expression))
        if not number_matches(result, row["answer"]):
            continue
        env = builder.make_message_env(row, renderer)
        opening = env.task_messages()
        solved = solved_example(row["question"], "calculator", {"expression": expression}, result, row["answer"])
        out.append(Conversation([*opening[:-1], *solved], list(env.tools or [])).to_json())
        if len(out) == n:
            break
    return out


def warmup(args: argparse.Namespace, work: Path, model: list[str]) -> tuple[Path, float]:
    """The supervised warm-up run (reused when finished) and its wall seconds."""
    run = work / "warmup"
    done = run / "bench_wall.txt"
    if not done.is_file():
        rows = warmup_conversations(args.model, args.warmup)
        data = work / "warmup.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"  warm-up: {len(rows)} solved tool conversations of the train split -> {data}")
        lr = ["--lr", args.warmup_lr] if args.warmup_lr else []
        wall = cookbook(work / "commands.log", "train", "sl", *model, "--dataset", str(data), "--log-dir", str(run),
                        "--if-exists", "overwrite", "--epochs", "1", "--batch-size", str(args.warmup_batch),
                        "--save-every", "0", "--eval-every", "0", "--train-on-what", "last_assistant_turn", *lr)
        done.write_text(f"{wall:.1f}")
    return run, float(done.read_text())


def rl_learning_rate(args: argparse.Namespace) -> float:
    """`--lr`, else `--lr-scale` times the model's RL default (`cookbook models info`; LoRA)."""
    from cookbook_cli.models.defaults import learning_rate_default

    return float(args.lr) if args.lr else args.lr_scale * learning_rate_default(args.model).for_rank(32, on_policy=True)


def train_rl(args: argparse.Namespace, work: Path, model: list[str], init: list[str]) -> tuple[Path, float]:
    """The RL run (reused when finished) and its wall seconds. Groups whose
    episodes all earned the same reward have zero advantage and add nothing to
    the gradient, so they are not trained on (`remove_constant_reward_groups`):
    it saves their forward and backward passes."""
    run = work / f"run{seed_suffix(args)}"
    done = run / "bench_wall.txt"
    if not done.is_file():
        wall = cookbook(work / "commands.log", "train", "rl", *model, "--env", "calculator", "--log-dir", str(run), "--if-exists", "overwrite",
                        "--max-steps", str(args.steps), "--group-size", str(args.group_size), "--groups-per-batch", str(args.groups_per_batch),
                        "--save-every", "0", "--seed", str(args.seed), "--lr", f"{rl_learning_rate(args):.3g}", "--remove-constant-reward-groups",
                        f"max_tokens={args.max_tokens}", f"env.max_turns={args.max_turns}", *init)
        done.write_text(f"{wall:.1f}")
    return run, float(done.read_text())


def seed_suffix(args: argparse.Namespace) -> str:
    """Told apart by folder: an RL run of another seed and its evaluation (the warm-up is shared)."""
    return f"-seed{args.seed}" if args.seed else ""


def per_step(run: Path, key: str) -> list[float]:
    """`key` of every RL step, in order."""
    return [r[key] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if isinstance(r.get(key), (int, float))]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def per_problem(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The held-out reward of each problem (by episode id): the mean over its attempts."""
    return {r["id"]: mean(r["rewards"]) for r in rows}


def flips(before: dict[str, float], after: dict[str, float]) -> tuple[int, int]:
    """Problems scored higher after than before, and lower."""
    return sum(after[k] > before.get(k, 0.0) for k in after), sum(after[k] < before.get(k, 0.0) for k in after)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--warmup", type=int, default=64, help="solved tool conversations to fine-tune on first (0: RL from the base model)")
    p.add_argument("--warmup-batch", type=int, default=8, help="warm-up conversations per step")
    p.add_argument("--warmup-lr", default="", help="warm-up learning rate; default: the model's rule")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--groups-per-batch", type=int, default=2)
    p.add_argument("--eval-problems", type=int, default=20)
    p.add_argument("--eval-temperature", type=float, default=1.0,
                   help="held-out sampling temperature (0: greedy); RL maximizes the reward of sampled attempts")
    p.add_argument("--eval-samples", type=int, default=None, help="attempts per held-out problem; default: 4 sampled, 1 greedy")
    p.add_argument("--max-tokens", type=int, default=64, help="sampled tokens per turn")
    p.add_argument("--max-turns", type=int, default=2)
    p.add_argument("--lr", default="", help="RL learning rate; default: --lr-scale x the model's RL rule")
    p.add_argument("--lr-scale", type=float, default=1.0, help="multiple of the model's RL learning rate (cookbook models info)")
    p.add_argument("--seed", type=int, default=0, help="the RL run's seed (its problem order and sampling); the warm-up is shared")
    p.add_argument("--work", default="runs/tool-rl")
    args = p.parse_args()
    if args.warmup < 0:
        sys.exit(f"--warmup must be >= 0, got {args.warmup}")
    if args.eval_samples is None:
        args.eval_samples = 1 if args.eval_temperature == 0 else 4
    if args.eval_samples < 1 or args.eval_temperature < 0:
        sys.exit(f"--eval-samples must be >= 1 and --eval-temperature >= 0, got {args.eval_samples} and {args.eval_temperature}")
    if args.lr_scale <= 0:
        sys.exit(f"--lr-scale must be > 0, got {args.lr_scale}")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = ["--model", args.model]
    print(f"calculator env on {args.model}: warm-up on {args.warmup} conversations, {args.steps} RL steps x "
          f"{args.groups_per_batch} problems x {args.group_size}, {args.eval_problems} held-out problems "
          f"{'greedy' if args.eval_temperature == 0 else f'x {args.eval_samples} at temperature {args.eval_temperature:g}'}, "
          f"{args.max_turns} turns of {args.max_tokens} tokens, RL seed {args.seed}", flush=True)

    # The base model is evaluated last: the answer to "did RL raise the reward" comes first.
    stages: list[tuple[str, HeldOut]] = []
    walls = {}
    init: list[str] = []
    if args.warmup:
        warm, walls["warm-up"] = warmup(args, work, model)
        stages.append(("warm-up", evaluate(args, work, ["--run", str(warm)], "warmup")))
        init = [f"init_from={warm}"]
    run, walls["RL"] = train_rl(args, work, model, init)
    stages.append(("RL", evaluate(args, work, ["--run", str(run)], f"after{seed_suffix(args)}")))
    stages.insert(0, ("base", evaluate(args, work, model, "before")))

    names = " -> ".join(name for name, _ in stages)
    print(f"  held-out ({names}):")
    pass_k = () if args.eval_samples == 1 else ((f"pass@{args.eval_samples}", f"pass@{args.eval_samples}"),)
    shown = (*SHOWN[:1], *BY_OPERATIONS, *pass_k, *SHOWN[1:])
    for key, label in shown:
        print(f"    {label:<26} " + " -> ".join(f"{e.metrics.get(key, float('nan')):.3f}" for _, e in stages))
    fixed, broken = flips(stages[-2][1].problems, stages[-1][1].problems)  # RL against where it started
    print(f"  held-out problems RL scored higher than its start: {fixed}; lower: {broken}")
    print(f"  RL (learning rate {rl_learning_rate(args):.3g}), per step:")
    for key, label in (("env/reward/mean", "train reward"), ("env/used_tool", "episodes calling a tool"),
                       ("optim/entropy", "entropy of trained tokens")):
        values = per_step(run, key)
        k = min(3, len(values) // 2)
        print(f"    {label:<26} " + " ".join(f"{v:.2f}" for v in values)
              + f"  (first {k} steps {mean(values[:k]):.3f}, last {k} {mean(values[-k:]):.3f})")
    print("  wall: " + ", ".join(f"train {k} {v:.0f}s" for k, v in walls.items()) + ", "
          + ", ".join(f"eval {name} {e.wall:.0f}s" for name, e in stages))


if __name__ == "__main__":
    main()
