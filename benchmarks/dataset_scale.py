"""Datasets larger than memory: peak RSS and time to the first training step of
`cookbook train sl --dataset hf dataset.path=<parquet>`, streamed
(`dataset.streaming=true`) beside today's in-memory path, at several row counts.

Each run is a separate process on the local engine with the tiny `random:`
model (one step of 2 conversations cut at 128 tokens, so the step's logits over
the 128,256-token vocabulary stay small beside the data; no evaluation, nothing
held out). The
parquet files (a `messages` column of 1-3 turn conversations of varied length,
seeded) are generated once and cached under --dir. The in-memory path also
converts the parquet to a `datasets` Arrow cache, into a fresh folder per run
(a first run's cost). A run over --timeout seconds or --memory-cap-gb of RSS is
stopped and reported as capped.

Targets (issue 16): streaming peak RSS under 1 GB and the first step within
10 s at 1,000,000 rows; streaming flat in the row count.

Run: python benchmarks/dataset_scale.py [--rows 1000,100000,1000000] [--dir /tmp/cookbook-dataset-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WORDS = (
    "the of and to in is that for it as with was on be by at this from have or an are not but which one all were "
    "model data train token loss batch step learn answer question explain write short list code python number "
    "reason because example first second then finally result value small large quick simple careful"
).split()


def generate(path: Path, rows: int, seed: int = 0, chunk: int = 50_000) -> None:
    """`rows` conversations: 1-3 user/assistant turns, a system prompt in a
    quarter of them, user turns of 4-40 words and replies of 8-160."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    words = np.asarray(WORDS)
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema([("messages", pa.list_(message))])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(str(tmp), schema) as writer:
        for start in range(0, rows, chunk):
            batch = []
            for _ in range(min(chunk, rows - start)):
                msgs = []
                if rng.random() < 0.25:
                    msgs.append({"role": "system", "content": " ".join(words[rng.integers(0, len(words), 12)])})
                for _ in range(int(rng.integers(1, 4))):
                    msgs.append({"role": "user", "content": " ".join(words[rng.integers(0, len(words), int(rng.integers(4, 41)))])})
                    msgs.append({"role": "assistant", "content": " ".join(words[rng.integers(0, len(words), int(rng.integers(8, 161)))])})
                batch.append(msgs)
            writer.write_table(pa.table({"messages": batch}, schema=schema), row_group_size=10_000)
    tmp.rename(path)


def dataset_file(folder: Path, rows: int) -> Path:
    path = folder / f"conversations-{rows}.parquet"
    if not path.exists():
        t0 = time.monotonic()
        print(f"generating {path} ...", flush=True)
        generate(path, rows)
        print(f"  {rows:,} rows, {path.stat().st_size / 2**20:.0f} MiB, in {time.monotonic() - t0:.0f} s", flush=True)
    return path


#: Run in the child before the CLI: note the time and peak RSS when step 0 is logged.
PRELUDE = """
import json, resource, time
from cookbook_cli.run import directory as _d
_log = _d.RunDir.log_metrics
def log_metrics(self, step, row):
    _log(self, step, row)
    if step == 0 and not row.get("final"):
        with open({marker!r}, "w") as f:
            json.dump({{"time": time.time(), "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}, f)
_d.RunDir.log_metrics = log_metrics
"""


@dataclass
class Result:
    path: str
    rows: int
    peak_rss_mb: float | None = None
    first_step_s: float | None = None
    total_s: float | None = None
    capped: str = ""


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(parquet: Path, rows: int, streaming: bool, work: Path, timeout: float, cap_gb: float) -> Result:
    result = Result("streaming" if streaming else "in-memory", rows)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    marker = run_dir / "first_step.json"
    args = ["train", "sl", "--renderer", "llama3", "--dataset", "hf", f"dataset.path={parquet}", "--max-steps", "1",
            "--batch-size", "2", "--max-length", "128", "--eval-every", "0", "--save-every", "0",
            "--log-dir", str(run_dir / "log"), "--if-exists", "overwrite"]
    if streaming:
        args.append("dataset.streaming=true")
    code = PRELUDE.format(marker=str(marker)) + (
        f"import sys\nfrom cookbook_cli.cli.main import main\nsys.argv = ['cookbook', *{args!r}]\nmain()\n"
    )
    env = dict(os.environ, COOKBOOK_LOAD_PLUGINS="", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", HF_DATASETS_CACHE=str(run_dir / "hf-cache"))
    t0 = time.time()
    with (run_dir / "stderr.txt").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=err)
    peak_seen = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # reaps the child with its rusage
        if pid:
            break
        peak_seen = max(peak_seen, rss_kb(proc.pid))
        elapsed = time.time() - t0
        if not result.capped and (elapsed > timeout or peak_seen > cap_gb * 2**20):
            proc.kill()
            result.capped = f"stopped at {elapsed:.0f} s (cap {timeout:.0f} s)" if elapsed > timeout else (
                f"stopped at {peak_seen / 2**20:.1f} GB RSS (cap {cap_gb:g} GB) after {elapsed:.0f} s"
            )
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = (run_dir / "stderr.txt").read_text()
    result.total_s = time.time() - t0
    result.peak_rss_mb = max(usage.ru_maxrss, peak_seen) / 1024
    if marker.exists():
        result.first_step_s = json.loads(marker.read_text())["time"] - t0
    elif not result.capped:
        result.capped = f"failed (exit {proc.returncode}): {stderr.strip().splitlines()[-1] if stderr.strip() else ''}"
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def fmt(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000,100000,1000000", help="comma-separated row counts")
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "cookbook-dataset-scale"), help="cache folder")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is stopped")
    parser.add_argument("--memory-cap-gb", type=float, default=6.0, help="RSS at which a run is stopped")
    parser.add_argument("--paths", default="streaming,in-memory")
    args = parser.parse_args()
    folder = Path(args.dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    counts = [int(x) for x in args.rows.split(",")]
    results: list[Result] = []
    for rows in counts:
        parquet = dataset_file(folder, rows)
        for path in args.paths.split(","):
            r = measure(parquet, rows, path == "streaming", folder, args.timeout, args.memory_cap_gb)
            results.append(r)
            print(f"  {path:9} {rows:>9,} rows: peak RSS {fmt(r.peak_rss_mb, '.0f')} MB, first step {fmt(r.first_step_s, '.1f')} s"
                  + (f" [{r.capped}]" if r.capped else ""), flush=True)

    print()
    print(f"{'path':10} {'rows':>10} {'peak RSS MB':>12} {'first step s':>13} {'total s':>8}  note")
    for r in results:
        print(f"{r.path:10} {r.rows:>10,} {fmt(r.peak_rss_mb, '.0f'):>12} {fmt(r.first_step_s, '.1f'):>13} {fmt(r.total_s, '.1f'):>8}  {r.capped}")
    print()
    by = {(r.path, r.rows): r for r in results}
    for rows in counts:
        s, m = by.get(("streaming", rows)), by.get(("in-memory", rows))
        if s and m and s.peak_rss_mb and m.peak_rss_mb:
            cap = " (in-memory capped: a lower bound)" if m.capped else ""
            time_ratio = (f"{m.first_step_s / s.first_step_s:.1f}x" if m.first_step_s and s.first_step_s else "-")
            print(f"{rows:>10,} rows: in-memory / streaming  RSS {m.peak_rss_mb / s.peak_rss_mb:.1f}x, first step {time_ratio}{cap}")
    streamed = [r for r in results if r.path == "streaming" and r.peak_rss_mb and r.first_step_s]
    if len(streamed) >= 2:
        lo, hi = streamed[0], streamed[-1]
        print(f"streaming {lo.rows:,} -> {hi.rows:,} rows: RSS x{hi.peak_rss_mb / lo.peak_rss_mb:.2f}, first step x{hi.first_step_s / lo.first_step_s:.2f}")
        big = streamed[-1]
        print(f"targets at {big.rows:,} rows: RSS {big.peak_rss_mb:.0f} MB (< 1024: {'ok' if big.peak_rss_mb < 1024 else 'over'}), "
              f"first step {big.first_step_s:.1f} s (<= 10: {'ok' if big.first_step_s <= 10 else 'over'})")


if __name__ == "__main__":
    main()
