"""Steps per second of the sl training loop, pipelined vs strictly sequential.

    python benchmarks/pipelining.py [--latency 0.05] [--steps 40] [--batch-size 8]

Both runs are the real `cookbook_cli.recipes.sl.train` loop on the shipped
sample conversations (llama3 renderer, tokenizer offline), with evaluation and
checkpoints on, against an engine stand-in (`cookbook_cli.engines.standin`)
whose every call takes a fixed latency and runs in submission order:

- sequential (`pipeline=false`): build the batch, forward_backward and wait,
  optim_step and wait, log;
- ours (`pipeline=true`): forward_backward and optim_step submitted back to
  back, the next batch built while they run, results of a step collected after
  the next step is submitted.

The headline is the "remote" stand-in (a result is ready `latency` after its
call was submitted: a service whose round trips overlap, like Tinker). The
"serial" stand-in (each call occupies the engine for `latency`: one local
device) is printed after it for reference. Prints `sequential steps/s`,
`pipelined steps/s` and `ratio` lines; target ratio >= 1.8.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from cookbook_cli.run.options import RunOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COOKBOOK_LOAD_PLUGINS", "")


def run(pipeline: bool, mode: str, args: argparse.Namespace, root: Path) -> float:
    from cookbook_cli.recipes.sl import SLConfig, train
    from cookbook_cli.engines.standin import StandInService

    service = StandInService(latency=args.latency, mode=mode)
    config = SLConfig(
        log_dir=str(root / f"{mode}-{'pipelined' if pipeline else 'sequential'}"),
        batch_size=args.batch_size,
        max_steps=args.steps,
        eval_every=args.eval_every,
        save_every=args.save_every,
        pipeline=pipeline,
    )
    t = time.perf_counter()
    result = train(config, RunOptions(if_exists="overwrite", service=service, progress=False, on_log=lambda m: None))
    elapsed = time.perf_counter() - t
    service.close()
    return result.total_steps / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per engine call (default 0.05)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--save-every", type=int, default=10)
    args = ap.parse_args()

    import contextlib
    import io

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with contextlib.redirect_stdout(io.StringIO()):  # warm-up: tokenizer, imports
            run(True, "remote", argparse.Namespace(**{**vars(args), "steps": 2}), root)
        results = {}
        for mode in ("remote", "serial"):
            with contextlib.redirect_stdout(io.StringIO()):
                seq = run(False, mode, args, root)
                ours = run(True, mode, args, root)
            results[mode] = (seq, ours)
    seq, ours = results["remote"]
    print(f"engine stand-in: {args.latency * 1000:.0f} ms per call, results in submission order; "
          f"{args.steps} steps of {args.batch_size} conversations, eval every {args.eval_every}, save every {args.save_every}")
    print(f"sequential steps/s: {seq:.2f}")
    print(f"pipelined steps/s: {ours:.2f}")
    print(f"ratio: {ours / seq:.2f}")
    s_seq, s_ours = results["serial"]
    print(f"(serial stand-in, each call occupying the engine: sequential {s_seq:.2f}, pipelined {s_ours:.2f} steps/s, "
          f"ratio {s_ours / s_seq:.2f})")


if __name__ == "__main__":
    main()
