"""Load on `cookbook serve`: 32 concurrent clients beside one request at a time.

    python benchmarks/serve_load.py                                   # tiny random model, 20 s per arm
    python benchmarks/serve_load.py --model smollm2-135m-instruct --seconds 20
    python benchmarks/serve_load.py --clients 32 --max-tokens 32 --json

Serves the model on 127.0.0.1 (a free port, from a background thread of this
process), then for `--seconds` each: one client sending requests one after
another, and `--clients` clients sending at once (threads, the official
`openai` client). Every request is a short chat with `max_tokens` and its own
seed. Prints requests/s, sampled tokens/s, p50/p95 latency per arm, the
concurrent/sequential throughput ratio (goal >= 3x: concurrent requests share
the local engine's decode batches) and errors (should be none; every reply
must end with stop or length). Only loopback addresses; bounded by time and
by a request count per arm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MAX_REQUESTS_PER_ARM = 100_000


def arm(url: str, name: str, clients: int, seconds: float, max_tokens: int) -> dict[str, Any]:
    import openai

    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    tokens = [0]
    errors: list[str] = []
    issued = [0]

    def client_loop(i: int) -> None:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0, timeout=600)
        j = 0
        while time.monotonic() < deadline:
            with lock:
                if issued[0] >= MAX_REQUESTS_PER_ARM:
                    return
                issued[0] += 1
            t0 = time.monotonic()
            try:
                r = client.chat.completions.create(
                    model=name, messages=[{"role": "user", "content": f"Tell me about request {i}-{j}."}],
                    max_tokens=max_tokens, seed=i * 100_000 + j,
                )
                ok = r.choices and r.choices[0].finish_reason in ("stop", "length") and r.usage.completion_tokens >= 1
                with lock:
                    if ok:
                        latencies.append(time.monotonic() - t0)
                        tokens[0] += r.usage.completion_tokens
                    else:
                        errors.append(f"incomplete reply: {r}")
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
            j += 1

    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    elapsed = time.monotonic() - t0  # includes finishing the requests in flight at the deadline
    lat = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(lat) / elapsed, 2),
        "tokens_per_s": round(tokens[0] / elapsed, 1),
        "p50_s": round(statistics.median(lat), 3) if lat else None,
        "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3) if lat else None,
    }


def main() -> None:
    from cookbook_cli.serving.server import ServeOptions, open_served_model, running_server
    from cookbook_cli.sources import resolve_source

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="random:tiny:llama3", help="any --model of cookbook serve (default: a tiny random Llama)")
    p.add_argument("--renderer", default=None)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    source = resolve_source(model=args.model, renderer=args.renderer)
    options = ServeOptions(port=0, name="bench", max_waiting=max(256, 4 * args.clients), timeout=600)
    with open_served_model(source, options) as model, running_server(model, options) as url:
        arm(url, "bench", 1, min(3.0, args.seconds), args.max_tokens)  # warm-up (not reported)
        sequential = arm(url, "bench", 1, args.seconds, args.max_tokens)
        concurrent = arm(url, "bench", args.clients, args.seconds, args.max_tokens)
        batches = list(getattr(model.client, "batches", []))
    ratio = concurrent["tokens_per_s"] / sequential["tokens_per_s"] if sequential["tokens_per_s"] else float("nan")
    report = {"model": args.model, "max_tokens": args.max_tokens, "sequential": sequential, "concurrent": concurrent,
              "throughput_ratio": round(ratio, 2), "largest_batch_requests": max((r for r, _ in batches), default=None)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"cookbook serve, {args.model}, max_tokens={args.max_tokens}, {args.seconds:g} s per arm")
    for label, r in (("1 client", sequential), (f"{args.clients} clients", concurrent)):
        print(f"  {label:>11}: {r['requests']} requests, {r['requests_per_s']} req/s, {r['tokens_per_s']} tok/s, "
              f"p50 {r['p50_s']} s, p95 {r['p95_s']} s, errors {r['errors']}")
    print(f"  concurrent / sequential throughput: {ratio:.2f}x (goal >= 3x); largest decode batch: {report['largest_batch_requests']} requests")
    if sequential["errors"] or concurrent["errors"]:
        print(f"  first error: {sequential['first_error'] or concurrent['first_error']}")


if __name__ == "__main__":
    main()
