"""On-policy distillation: asynchronous against synchronous iterations per
second, and the share of an iteration the teacher's scoring takes.

1. The one on-policy loop (`cookbook_cli.recipes.distill`, on the RL sampler)
   with `max_steps_off_policy` K against K = 0, on an engine stand-in
   (`cookbook_cli.engines.standin`) whose student sampling calls take a fixed
   latency, whose training step takes another, and whose teacher answers
   `compute_logprobs` after a third: the difference is the loop's scheduling
   alone. Synchronously a step waits for sampling, then scoring, then
   training; asynchronously the next batch is sampled while the current one
   is scored and trained. Iterations/s between the first and the last step
   (set-up and the final checkpoint excluded). Target: ratio >= 1.5.
2. On the local engine (CPU unless --device), a tiny random student over the
   toy tokenizer distilled from a small random teacher: the mean of
   time/teacher over time/step (the first step, which loads the models, left out).

Run: python benchmarks/distill.py [--steps 20] [--sample-latency 0.2] [--score-latency 0.1] [--train-latency 0.2] [-k 1] [--local-steps 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import tempfile
from unittest import mock
from cookbook_cli.run.options import RunOptions

os.environ.setdefault("COOKBOOK_LOAD_PLUGINS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class FixedLatencyTeacher:
    """A teacher that answers compute_logprobs after `latency` seconds."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    async def compute_logprobs_async(self, prompt):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.latency)
        return [None] + [-1.0] * (prompt.length - 1)


def prompt_file(root: str) -> str:
    words = "hello there|a cat sat|ask us|sun and sea|a quiet lane|ask a question|see us soon|nice".split("|")
    path = os.path.join(root, "prompts.jsonl")
    with open(path, "w") as f:
        for w in words:
            f.write(json.dumps({"messages": [{"role": "user", "content": w}]}) + "\n")
    return path


def stand_in_rate(k: int, args: argparse.Namespace, root: str) -> tuple[float, int]:
    from cookbook_cli.distill import teachers
    from cookbook_cli.distill.prompts import PromptFileBuilder
    from cookbook_cli.engines.standin import StandInService
    from cookbook_cli.recipes.distill import DistillConfig, TeacherSource, train
    from cookbook_cli.rl.toy_tokenizer import toy_model, toy_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    service = StandInService(get_tokenizer(toy_tokenizer_path()), sample_latency=args.sample_latency, train_latency=args.train_latency)
    config = DistillConfig(
        teachers=[TeacherSource(model=toy_model(), prompts=PromptFileBuilder(path=prompt_file(root)))],
        log_dir=os.path.join(root, f"k{k}"), model=toy_model(), renderer="role_colon", max_steps=args.steps,
        epochs=args.steps, group_size=args.group_size, groups_per_batch=args.groups_per_batch, max_steps_off_policy=k,
        max_tokens=8, save_every=0, num_groups_to_log=0,
    )

    async def client(self, service):  # type: ignore[no-untyped-def]
        return FixedLatencyTeacher(args.score_latency)

    with mock.patch.object(teachers.Teacher, "client", client), contextlib.redirect_stdout(io.StringIO()):
        result = train(config, RunOptions(if_exists="overwrite", service=service, progress=False, on_log=lambda m: None))
    elapsed = [row["elapsed"] for row in result.metrics]
    return (len(elapsed) - 1) / (elapsed[-1] - elapsed[0]), max(row["staleness/max"] for row in result.metrics)


def local_teacher_share(args: argparse.Namespace, root: str) -> tuple[float, float, float]:
    from cookbook_cli.distill.prompts import PromptFileBuilder
    from cookbook_cli.recipes.distill import DistillConfig, TeacherSource, train
    from cookbook_cli.rl.toy_tokenizer import toy_model

    teacher = toy_model("small")
    config = DistillConfig(
        teachers=[TeacherSource(model=teacher, prompts=PromptFileBuilder(path=prompt_file(root)))],
        log_dir=os.path.join(root, "local"), model=toy_model("tiny"), renderer="role_colon", max_steps=args.local_steps,
        epochs=args.local_steps, group_size=args.group_size, groups_per_batch=args.groups_per_batch, max_tokens=16,
        lora_rank=0, learning_rate=0.03, save_every=0, num_groups_to_log=0, engine_options={"device": args.device},
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = train(config, RunOptions(if_exists="overwrite", progress=False, on_log=lambda m: None))
    rows = result.metrics[1:]
    teacher_s = sum(r["time/teacher"] for r in rows) / len(rows)
    step_s = sum(r["time/step"] for r in rows) / len(rows)
    return teacher_s, step_s, teacher_s / step_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sample-latency", type=float, default=0.2, help="seconds per student sampling call")
    parser.add_argument("--score-latency", type=float, default=0.1, help="seconds per teacher compute_logprobs call")
    parser.add_argument("--train-latency", type=float, default=0.2, help="seconds per forward_backward")
    parser.add_argument("-k", "--max-steps-off-policy", type=int, default=1)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--groups-per-batch", type=int, default=8)
    parser.add_argument("--local-steps", type=int, default=6, help="steps on the local engine (0: skip)")
    parser.add_argument("--device", default="cpu", help="the local engine's device")
    args = parser.parse_args()
    if args.max_steps_off_policy < 1:
        parser.error("-k must be at least 1 (0 is the synchronous baseline)")
    print(
        f"stand-in: student sampling {args.sample_latency:.3f} s/call, teacher scoring {args.score_latency:.3f} s/call, "
        f"training {args.train_latency:.3f} s/step; {args.groups_per_batch} prompts x {args.group_size} samples per step, {args.steps} steps"
    )
    with tempfile.TemporaryDirectory() as root:
        sync, sync_stale = stand_in_rate(0, args, root)
        print(f"sync (max_steps_off_policy=0): {sync:.2f} iterations/s (max staleness {sync_stale})")
        asyn, async_stale = stand_in_rate(args.max_steps_off_policy, args, root)
        print(f"async (max_steps_off_policy={args.max_steps_off_policy}): {asyn:.2f} iterations/s (max staleness {async_stale})")
        ratio = asyn / sync
        print(f"ratio: {ratio:.2f}x (target >= 1.5x: {'ok' if ratio >= 1.5 else 'below target'})")
        if args.local_steps > 1:
            teacher_s, step_s, share = local_teacher_share(args, root)
            print(
                f"local engine ({args.device}): teacher scoring {teacher_s:.3f} s of a {step_s:.3f} s iteration "
                f"({share * 100:.0f}%), tiny student, small teacher, {args.local_steps} steps"
            )


if __name__ == "__main__":
    main()
