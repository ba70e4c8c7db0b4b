"""Asynchronous against synchronous RL: training iterations per second of the one
RL loop (`cookbook_cli.recipes.rl`) with `max_steps_off_policy` K against K = 0,
on an engine stand-in whose sampling calls each take a fixed latency and whose
training calls take another (`cookbook_cli.engines.standin`), so the difference is
the loop's scheduling alone: synchronous training waits for sampling and then
for training; asynchronous training samples the next batch on recent weights
while the current one trains.

Iterations/s are measured between the first and the last completed step (the
steady state: set-up and the final checkpoint excluded). Target: ratio >= 1.5.

Run: python benchmarks/rl_async.py [--steps 20] [--sample-latency 0.2] [--train-latency 0.2] [-k 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
from cookbook_cli.run.options import RunOptions

os.environ.setdefault("COOKBOOK_LOAD_PLUGINS", "")


def iterations_per_second(k: int, args: argparse.Namespace, root: str) -> tuple[float, float]:
    from cookbook_cli.recipes.rl import RLConfig, train
    from cookbook_cli.rl.first_token import FirstTokenBuilder
    from cookbook_cli.engines.standin import StandInService
    from cookbook_cli.rl.toy_tokenizer import toy_model, toy_tokenizer_path
    from cookbook_cli.tokenizers import get_tokenizer

    service = StandInService(
        get_tokenizer(toy_tokenizer_path()), sample_latency=args.sample_latency, train_latency=args.train_latency
    )
    config = RLConfig(
        env=FirstTokenBuilder(),
        log_dir=os.path.join(root, f"k{k}"),
        model=toy_model(),
        renderer="role_colon",
        max_steps=args.steps,
        group_size=args.group_size,
        groups_per_batch=args.groups_per_batch,
        max_steps_off_policy=k,
        save_every=0,
        num_groups_to_log=0,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # the loop's per-step progress lines
        result = train(config, RunOptions(if_exists="overwrite", service=service, progress=False, on_log=lambda m: None))
    elapsed = [row["elapsed"] for row in result.metrics]
    staleness = max(row["staleness/max"] for row in result.metrics)
    return (len(elapsed) - 1) / (elapsed[-1] - elapsed[0]), staleness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sample-latency", type=float, default=0.2, help="seconds per sampling call")
    parser.add_argument("--train-latency", type=float, default=0.2, help="seconds per forward_backward")
    parser.add_argument("-k", "--max-steps-off-policy", type=int, default=1)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--groups-per-batch", type=int, default=8)
    args = parser.parse_args()
    if args.max_steps_off_policy < 1:
        parser.error("-k must be at least 1 (0 is the synchronous baseline)")
    print(
        f"stand-in engine: sampling {args.sample_latency:.3f} s/call, training {args.train_latency:.3f} s/step; "
        f"{args.groups_per_batch} groups x {args.group_size} per step, {args.steps} steps"
    )
    with tempfile.TemporaryDirectory() as root:
        sync, sync_stale = iterations_per_second(0, args, root)
        print(f"sync (max_steps_off_policy=0): {sync:.2f} iterations/s (max staleness {sync_stale})")
        asyn, async_stale = iterations_per_second(args.max_steps_off_policy, args, root)
        print(f"async (max_steps_off_policy={args.max_steps_off_policy}): {asyn:.2f} iterations/s (max staleness {async_stale})")
    ratio = asyn / sync
    print(f"ratio: {ratio:.2f}x (target >= 1.5x: {'ok' if ratio >= 1.5 else 'below target'})")


if __name__ == "__main__":
    main()
