"""The DPO reference: a frozen model every pair is compared against.

Its logprob sums (S_chosen_ref, S_rejected_ref) never change, so they are
computed once per pair (the pairs the run's steps train on, and the test
split), and kept with the run in `reference/sums.json` with the reference's
identity and a digest of the data:

    {"identity": {"kind": "start", "model": "...", "checkpoint": null},
     "data": "<sha256>", "sums": {"train/0": [-12.5, -14.25], "test/3": [...], ...}}

Epochs after the first need no reference pass, and a resumed run reads the
file instead of recomputing (it computes only pairs the file lacks, e.g. after
a larger --max-steps, or all when the file is missing or damaged: from the
recorded identity, never from its own partly trained weights).

The reference is, by default, the starting weights ("start": the base model,
or `init_from`); scored by the training client itself before its first update,
the policy's and the reference's logprobs are then equal exactly at step 0.
`reference=X` names another: a model, a state checkpoint, or a run directory
(its newest checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import ServiceClient, TrainingClient
    from cookbook_cli.preference.data import PreferenceBatch, PreferenceDataset
    from cookbook_cli.run.reader import RunReader

FOLDER = "reference"
CACHE = "sums.json"

Sums = dict[str, tuple[float, float] | None]  # None: a pair with nothing to train within max_length


def pair_key(split: str, row: int) -> str:
    return f"{split}/{row}"


def resolve_checkpoint(path: str, model: str | None = None, what: str = "checkpoint") -> str:
    """A state checkpoint to load: a run directory means its newest recorded
    checkpoint; any other path (a checkpoint folder, `tinker://...`) as given.
    With `model`, a checkpoint of a run of another base model is refused (its
    config.json says), before anything loads."""
    from cookbook_cli.run.reader import RunReader, run_containing

    if "://" in path:
        return path
    p = Path(path).expanduser()
    if not p.exists():
        raise CookbookError(f"{what} {path!r} does not exist; give a run directory, a checkpoint folder or a tinker:// path")
    run = RunReader.at(p)
    owner = run or (RunReader(found) if (found := run_containing(p.resolve())) else None)
    if owner is not None and model is not None:
        check_same_base_model(owner, model, what, path)
    if run is None:
        return str(p.resolve())
    record = run.latest()
    if record is None:
        raise CookbookError(f"run {path!r} recorded no checkpoint yet")
    return run.absolute(record["state_path"])


def check_same_base_model(run: RunReader, model: str, what: str, path: str) -> None:
    """A checkpoint's weights load only on the base model its run trained."""
    theirs = run.stored_config().get("model")
    if isinstance(theirs, str) and theirs != model:
        raise CookbookError(
            f"{what} {path!r} was trained from base model {theirs!r}, not this run's {model!r}; "
            f"its weights load only on their own base model: pass --model {theirs}, or a checkpoint of a {model!r} run"
        )


@dataclass(frozen=True)
class Reference:
    """What the reference is, as recorded in the run."""

    kind: str  # "start": the starting weights; "checkpoint"; "model"
    model: str  # the base model (start, checkpoint) or the reference model
    checkpoint: str | None = None  # the state loaded on top of `model`

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "checkpoint": self.checkpoint}

    def describe(self) -> str:
        if self.kind == "start":
            return f"the starting weights ({self.checkpoint or self.model})"
        return self.checkpoint or self.model


def reference_of(model: str, init_from: str | None, reference: str | None) -> Reference:
    """The reference a run compares against, and `init_from` checked (both
    before the run opens: a missing path or another base model is one line)."""
    from cookbook_cli.local_paths import check_scoring_model

    start = resolve_checkpoint(init_from, model, "--init-from") if init_from else None
    if reference is None:
        return Reference("start", model, start)
    if "://" in reference or (Path(reference).expanduser().exists() and not _is_model_folder(Path(reference).expanduser())):
        return Reference("checkpoint", model, resolve_checkpoint(reference, model, "--reference"))
    check_scoring_model(model, reference, "--reference", "give a model (Hub id or folder), a run directory, a checkpoint folder or a tinker:// path")
    return Reference("model", reference)


def _is_model_folder(path: Path) -> bool:
    """A Hugging Face model folder (config.json, no checkpoint meta.json), not a run."""
    from cookbook_cli.run.reader import RunReader

    return (path / "config.json").is_file() and not (path / "meta.json").exists() and RunReader.at(path) is None


def open_reference_client(service: ServiceClient, ref: Reference, rank: int, seed: int) -> TrainingClient:
    """A client computing the reference's logprobs (a fresh LoRA adapter is zero,
    so it computes exactly the model it wraps)."""
    client = service.create_lora_training_client(ref.model, rank=rank, seed=seed)
    if ref.checkpoint is not None:
        try:
            client.load_state(ref.checkpoint).result()
        except CookbookError as e:
            raise CookbookError(f"cannot load the DPO reference {ref.checkpoint!r}: {e}") from None
    return client


def batches_for_steps(ds: PreferenceDataset, start: int, total: int) -> list[list[int]]:
    """The rows of each batch the steps `start..total-1` train on (step s: batch
    s % B of epoch s // B). The reference is scored in these very batches: the
    local engine packs a batch's sequences together, so a pair's logprobs are
    bit-identical to the policy's at step 0 only in the same company."""
    batches = len(ds)
    epoch_before = ds.epoch_seed
    out: list[list[int]] = []
    for step in range(start, total):
        if ds.epoch_seed != step // batches:
            ds.set_epoch(step // batches)
        out.append(list(ds.batch_indices(step % batches)))
    if epoch_before is not None and ds.epoch_seed != epoch_before:
        ds.set_epoch(epoch_before)
    return out


def all_batches_rows(ds: PreferenceDataset) -> list[list[int]]:
    """The rows of `ds.all_batches()` (evaluation), batch by batch."""
    return [list(range(i, min(i + ds.batch_size, ds.num_rows))) for i in range(0, ds.num_rows, ds.batch_size)]


def compute_sums(client: TrainingClient, wanted: Mapping[str, tuple[PreferenceDataset, Sequence[Sequence[int]]]]) -> Sums:
    """S_chosen and S_rejected of the wanted rows of each split, scored batch by
    batch as given, under `client`'s current weights: all forward passes queued,
    then read. A row whose pair keeps no completion token within max_length
    gets None (it is never trained)."""
    from cookbook_cli.preference.loss import pair_logprob_sums

    pending: list[tuple[str, list[int], PreferenceBatch, Any]] = []
    for split, (ds, groups) in wanted.items():
        for group in groups:
            chunk = list(group)
            if not chunk:
                continue
            batch = ds.build_rows(chunk)
            pending.append((split, chunk, batch, client.forward(batch.datums, "cross_entropy") if len(batch) else None))
    sums: Sums = {}
    for split, chunk, batch, future in pending:
        for row in chunk:
            sums.setdefault(pair_key(split, row), None)
        if future is None:
            continue
        out = future.result()
        pairs = pair_logprob_sums(batch.datums, [o["logprobs"] for o in out.loss_fn_outputs])
        for row, pair in zip(batch.rows, pairs, strict=True):
            if sums.get(pair_key(split, row)) is None:  # the first batch that scores a row keeps it
                sums[pair_key(split, row)] = pair
    return sums


def load_sums(folder: Path, ref: Reference, fingerprint: str, say: Callable[[str], None]) -> Sums | None:
    """The cached sums, if the file holds this reference's sums of these data
    (`fingerprint`); otherwise None (with a notice when a file was there)."""
    from cookbook_cli.run.files import read_json

    path = folder / CACHE
    if not path.is_file():
        return None
    try:
        data = read_json(path)
        if data.get("identity") != ref.identity():
            raise CookbookError(f"it holds another reference ({data.get('identity')})")
        if data.get("data") != fingerprint:
            raise CookbookError("it was computed for other data")
        sums = {k: None if v is None else (float(v[0]), float(v[1])) for k, v in data["sums"].items()}
    except (CookbookError, AttributeError, KeyError, TypeError, ValueError, IndexError) as e:
        say(f"Reference logprobs in {path} are unusable ({e}); computing them again")
        return None
    return sums


def save_sums(folder: Path, ref: Reference, fingerprint: str, sums: Sums) -> None:
    from cookbook_cli.run.files import write_json_atomic

    rows = {k: None if v is None else list(v) for k, v in sums.items()}
    write_json_atomic(folder / CACHE, {"identity": ref.identity(), "data": fingerprint, "sums": rows})


def fingerprint(splits: Mapping[str, PreferenceDataset | None]) -> str:
    """A digest of every pair's tokens and weights: sums cached for other data are never reused."""
    import hashlib

    h = hashlib.sha256()
    for split, ds in splits.items():
        if ds is None:
            continue
        for batch in ds.all_batches():
            h.update(f"{split}:{batch.rows}".encode())
            for datum in batch.datums:
                h.update(bytes(str(datum.model_input.to_ints()), "ascii"))
                h.update(datum.loss_fn_inputs["weights"].to_numpy().tobytes())
    return h.hexdigest()
