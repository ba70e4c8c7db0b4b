"""Record the batches tinker-cookbook's supervised loop trains on, as JSON.

Run it with a Python that has tinker-cookbook installed (not cookbook's):

    /work/tcb-venv/bin/python scripts/tinker_cookbook_batches.py \\
        --renderer llama3 --tokenizer ../shared/tokenizers/llama3 --epochs 2 --batches 3 \\
        --case cookbook_cli/data/sample_conversations.jsonl:8:10:0 --out batches.json

Each `--case FILE:BATCH_SIZE:TEST_SIZE:SHUFFLE_SEED` (or each object of a
`--cases` JSON list with those four keys) builds tinker-cookbook's own
`FromConversationFileBuilder` with a `ChatDatasetBuilderCommonConfig` and then
draws from it as `tinker_cookbook.supervised.train` does: for each epoch e,
`set_epoch(seed=e)`, then `get_batch(i)` for i in 0..len(dataset)-1 (the first
`--batches` of them). The test set is every batch of the held-out dataset in
order, as its NLL evaluator collects it. Datums use the builder's default
weight reduction ("mean").

The JSON holds, per file, a table of the distinct datums seen (model_input
tokens, target tokens, weights as float32 values), and per case the table
indices of each batch of each epoch and of the test set. The tokenizer is
loaded from a local folder (AutoTokenizer, no Hub access).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def parse_case(spec: str) -> dict[str, Any]:
    path, bs, test, seed = spec.rsplit(":", 3)
    return {"file": path, "batch_size": int(bs), "test_size": int(test), "shuffle_seed": int(seed)}


def compact_float32(x: float) -> float:
    """The float32 value of `x`, as the shortest decimal that reads back to it."""
    import numpy as np

    return float(np.format_float_positional(np.float32(x), unique=True, trim="0"))


def datum_record(datum: Any) -> dict[str, list]:
    inputs = datum.loss_fn_inputs
    return {
        "model_input": [int(t) for t in datum.model_input.to_ints()],
        "targets": [int(t) for t in inputs["target_tokens"].data],
        "weights": [compact_float32(w) for w in inputs["weights"].data],
    }


class DatumTable:
    """Distinct datums of one file, so a row drawn in several cases is stored once."""

    def __init__(self) -> None:
        self.rows: list[dict[str, list]] = []
        self._index: dict[str, int] = {}

    def add(self, datum: Any) -> int:
        record = datum_record(datum)
        key = json.dumps(record)
        if key not in self._index:
            self._index[key] = len(self.rows)
            self.rows.append(record)
        return self._index[key]


def record_case(case: dict[str, Any], args: argparse.Namespace, root: Path, table: DatumTable) -> dict[str, Any]:
    from tinker_cookbook.renderers import TrainOnWhat
    from tinker_cookbook.supervised.data import FromConversationFileBuilder
    from tinker_cookbook.supervised.types import ChatDatasetBuilderCommonConfig

    path = Path(case["file"])
    path = path if path.is_absolute() else root / path
    builder = FromConversationFileBuilder(
        file_path=str(path),
        test_size=case["test_size"],
        shuffle_seed=case["shuffle_seed"],
        common_config=ChatDatasetBuilderCommonConfig(
            model_name_for_tokenizer=str(Path(args.tokenizer).resolve()),
            renderer_name=args.renderer,
            max_length=args.max_length,
            batch_size=case["batch_size"],
            train_on_what=TrainOnWhat(args.train_on_what) if args.train_on_what else None,
        ),
    )
    train_ds, test_ds = builder()
    n_batches = len(train_ds)
    drawn = n_batches if args.batches is None else min(args.batches, n_batches)
    epochs = []
    for epoch in range(args.epochs):  # the loop of tinker_cookbook.supervised.train.main
        train_ds.set_epoch(seed=epoch)
        epochs.append([[table.add(d) for d in train_ds.get_batch(i)] for i in range(drawn)])
    test = None
    if test_ds is not None:
        test = [table.add(d) for i in range(len(test_ds)) for d in test_ds.get_batch(i)]
    return {**case, "batches_per_epoch": n_batches, "epochs": epochs, "test": test}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--renderer", required=True, help="tinker-cookbook renderer name, e.g. llama3")
    p.add_argument("--tokenizer", required=True, help="local tokenizer folder (tokenizer.json, tokenizer_config.json)")
    p.add_argument("--case", action="append", default=[], type=parse_case, help="FILE:BATCH_SIZE:TEST_SIZE:SHUFFLE_SEED")
    p.add_argument("--cases", help="JSON file: a list of {file, batch_size, test_size, shuffle_seed}")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batches", type=int, default=None, help="record only the first N batches of each epoch")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--train-on-what", default=None, help="TrainOnWhat value (default: all_assistant_messages)")
    p.add_argument("--root", default=".", help="relative case files are read from, and recorded relative to, this folder")
    p.add_argument("--out", required=True, help="where to write the JSON")
    args = p.parse_args(argv)

    cases = list(args.case)
    if args.cases:
        cases += json.loads(Path(args.cases).read_text(encoding="utf-8"))
    if not cases:
        p.error("give at least one --case or --cases")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import logging

    logging.getLogger("tinker_cookbook").setLevel(logging.ERROR)  # the per-renderer extension warning
    root = Path(args.root).resolve()

    tables: dict[str, DatumTable] = {}
    recorded = [record_case(c, args, root, tables.setdefault(c["file"], DatumTable())) for c in cases]
    out = {
        "generator": {
            "command": " ".join(["python", "scripts/tinker_cookbook_batches.py", *(argv if argv is not None else sys.argv[1:])]),
            "tinker_cookbook": metadata.version("tinker-cookbook"),
            "datasets": metadata.version("datasets"),
            "transformers": metadata.version("transformers"),
        },
        "renderer": args.renderer,
        "tokenizer": Path(args.tokenizer).name,
        "max_length": args.max_length,
        "train_on_what": args.train_on_what or "all_assistant_messages",
        "reduction": "mean",
        "epochs": args.epochs,
        "datums": {f: t.rows for f, t in tables.items()},
        "cases": recorded,
    }
    Path(args.out).write_text(json.dumps(out, separators=(",", ":")) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
