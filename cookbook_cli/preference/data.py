"""Comparison files and preference datasets.

A comparison file is JSONL, one comparison per line, in either of two shapes:

- tinker-cookbook's: `{"comparison": {"prompt_conversation": [...],
  "completion_A": [...], "completion_B": [...]}, "label": "A" | "B" | "Tie"}`;
- the conversational preference shape (TRL's): `{"prompt": [...], "chosen":
  [...], "rejected": [...]}` — the chosen completion becomes A, labelled "A".
  `prompt` may be a string (one user message) or left out (then the messages
  that `chosen` and `rejected` start with in common are the prompt); `chosen`
  and `rejected` may be strings (one assistant message).

Either shape may carry `"tools": [...]` (OpenAI function specs). A file may mix
the shapes: each line is read by its own keys, and the counts are logged.

`PreferenceDataset` serves comparisons in seeded batches, like the supervised
datasets: per pair a chosen and a rejected Datum, rendered with the recipe's
renderer, with weight 1 on the completion's assistant tokens only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.conversations import Conversation, parse_messages, parse_tools
from cookbook_cli.user_files import iter_jsonl
from cookbook_cli.data.supervised import ConversationDataset, SupervisedDataset
from cookbook_cli.errors import CookbookError
from cookbook_cli.preference.types import Comparison, LabeledComparison, parse_label
from cookbook_cli.types import Message, TrainOnWhat

if TYPE_CHECKING:
    import tinker.types

    from cookbook_cli.renderers.base import Renderer

logger = logging.getLogger("cookbook_cli.preference")

SHAPE_COMPARISON = "comparison"  # tinker-cookbook's
SHAPE_CHOSEN_REJECTED = "prompt/chosen/rejected"  # TRL's conversational shape

_COMPLETION_ROLES = ("assistant", "tool")


# -- reading comparisons ------------------------------------------------------------------


def completion_messages(raw: Any, where: str, name: str) -> list[Message]:
    """A completion: a list of assistant (and tool-result) messages, or a string."""
    if isinstance(raw, str):
        return [{"role": "assistant", "content": raw}]
    messages = parse_messages(raw, where, name)
    return check_completion(messages, where, name)


def check_completion(messages: list[Message], where: str, name: str) -> list[Message]:
    for i, m in enumerate(messages):
        if m["role"] not in _COMPLETION_ROLES:
            raise CookbookError(
                f"{where}: {name}[{i}]: a completion holds the model's reply (assistant and tool messages); "
                f"got role {m['role']!r} (put earlier turns in the prompt)"
            )
    return messages


def prompt_messages(raw: Any, where: str, name: str) -> list[Message]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}] if raw else []
    return parse_messages(raw, where, name)


def _prompt_length(a: list[Message], b: list[Message]) -> int:
    """How many leading messages two whole conversations share as their prompt:
    the common start, less any assistant or tool messages it ends with (a
    completion is the whole reply after the last shared user or system turn)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    while n > 0 and a[n - 1]["role"] in _COMPLETION_ROLES:
        n -= 1
    return n


def _from_comparison_shape(obj: dict[str, Any], where: str) -> LabeledComparison:
    body = obj["comparison"]
    if not isinstance(body, dict):
        raise CookbookError(f"{where}: field 'comparison' must be an object with prompt_conversation, completion_A, completion_B")
    for key in ("prompt_conversation", "completion_A", "completion_B"):
        if key not in body:
            raise CookbookError(f"{where}: missing field 'comparison.{key}'")
    if "label" not in obj:
        raise CookbookError(f"{where}: missing field 'label' (\"A\", \"B\" or \"Tie\")")
    label = parse_label(obj["label"], where)
    comparison = Comparison(
        prompt_conversation=parse_messages(body["prompt_conversation"], where, "comparison.prompt_conversation"),
        completion_A=completion_messages(body["completion_A"], where, "comparison.completion_A"),
        completion_B=completion_messages(body["completion_B"], where, "comparison.completion_B"),
        tools=parse_tools(obj.get("tools", body.get("tools")), where),
    )
    return LabeledComparison(comparison, label, where)


def _from_chosen_rejected_shape(obj: dict[str, Any], where: str) -> LabeledComparison:
    for key in ("chosen", "rejected"):
        if key not in obj:
            raise CookbookError(f"{where}: missing field {key!r} (a line needs \"chosen\" and \"rejected\")")
    if "prompt" in obj:
        prompt = prompt_messages(obj["prompt"], where, "prompt")
        chosen = completion_messages(obj["chosen"], where, "chosen")
        rejected = completion_messages(obj["rejected"], where, "rejected")
    elif isinstance(obj["chosen"], str) and isinstance(obj["rejected"], str):
        prompt, chosen, rejected = [], completion_messages(obj["chosen"], where, "chosen"), completion_messages(obj["rejected"], where, "rejected")
    else:
        # implicit prompt: both sides are whole conversations; the shared start is the prompt
        full_c = parse_messages(obj["chosen"], where, "chosen")
        full_r = parse_messages(obj["rejected"], where, "rejected")
        n = _prompt_length(full_c, full_r)
        prompt = full_c[:n]
        chosen = check_completion(full_c[n:], where, "chosen")
        rejected = check_completion(full_r[n:], where, "rejected")
    return LabeledComparison(Comparison(prompt, chosen, rejected, parse_tools(obj.get("tools"), where)), "A", where)


def parse_comparison(obj: Any, where: str) -> tuple[LabeledComparison, str]:
    """One decoded line as a labelled comparison, and which shape it had."""
    if not isinstance(obj, dict):
        raise CookbookError(
            f"{where}: expected a JSON object with 'comparison' and 'label', or 'prompt', 'chosen' and 'rejected'; "
            f"got {type(obj).__name__}"
        )
    if "comparison" in obj:
        clash = [k for k in ("chosen", "rejected", "prompt") if k in obj]
        if clash:
            raise CookbookError(f"{where}: has both 'comparison' and {clash[0]!r}; give one comparison shape per line")
        lc = _from_comparison_shape(obj, where)
        shape = SHAPE_COMPARISON
    elif "chosen" in obj or "rejected" in obj:
        lc = _from_chosen_rejected_shape(obj, where)
        shape = SHAPE_CHOSEN_REJECTED
    elif "completion" in obj and "label" in obj:
        raise CookbookError(
            f"{where}: an unpaired row (prompt, completion, label) is not a comparison; "
            "DPO needs a chosen and a rejected completion of the same prompt"
        )
    else:
        keys = ", ".join(repr(k) for k in list(obj)[:6]) or "none"
        raise CookbookError(
            f"{where}: not a comparison (keys: {keys}); a line is "
            "{\"comparison\": {\"prompt_conversation\", \"completion_A\", \"completion_B\"}, \"label\"} "
            "or {\"prompt\", \"chosen\", \"rejected\"}"
        )
    c = lc.comparison
    if not c.prompt_conversation and not c.completion_A and not c.completion_B:
        raise CookbookError(f"{where}: the prompt and both completions are empty; there is nothing to compare")
    return lc, shape


def iter_comparisons(path: str | Path) -> Iterator[tuple[LabeledComparison, str]]:
    """(comparison, shape) for each line of a comparison file, validated."""
    for _, where, obj in iter_jsonl(path, "comparison file"):
        yield parse_comparison(obj, where)


def load_comparisons(path: str | Path) -> list[LabeledComparison]:
    """Every comparison of a file (ties included: a tie is data, skipped later).
    A file that mixes the two shapes is read, and the mix is logged."""
    rows = list(iter_comparisons(path))
    if not rows:
        raise CookbookError(f"comparison file {str(path)!r} holds no comparisons")
    shapes = Counter(shape for _, shape in rows)
    if len(shapes) > 1:
        logger.warning(
            "%s mixes the two comparison shapes: %s; each line is read by its own keys",
            path,
            ", ".join(f"{n} lines of {shape}" for shape, n in sorted(shapes.items())),
        )
    return [lc for lc, _ in rows]


# -- usable comparisons -------------------------------------------------------------------


@dataclass
class ComparisonSet:
    """The comparisons of one split, and the rows left out of it, by reason."""

    comparisons: list[LabeledComparison] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def usable(self) -> ComparisonSet:
        """Without ties, empty completions and identical completions (counted in `skipped`)."""
        kept = []
        skipped = Counter(self.skipped)
        for lc in self.comparisons:
            reason = lc.skip_reason()
            if reason is None:
                kept.append(lc)
            else:
                skipped[reason] += 1
        return ComparisonSet(kept, skipped)

    def describe_skipped(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))


# -- datasets -----------------------------------------------------------------------------


@dataclass
class PreferenceBatchStats:
    """What went into one batch: counted in the step's metrics."""

    pairs: int = 0
    tokens: int = 0  # model input tokens over both sides of every pair
    loss_tokens: int = 0  # completion tokens with weight > 0, both sides
    truncated: int = 0  # pairs with a side cut at max_length
    skipped: int = 0  # pairs dropped: a side has no completion token within max_length

    def as_metrics(self, prefix: str = "") -> dict[str, int]:
        return {
            f"{prefix}pairs": self.pairs,
            f"{prefix}tokens": self.tokens,
            f"{prefix}loss_tokens": self.loss_tokens,
            f"{prefix}truncated": self.truncated,
            f"{prefix}skipped": self.skipped,
        }


@dataclass
class PreferenceBatch:
    """Pair i is (`chosen[i]`, `rejected[i]`); `datums` interleaves them
    ([c0, r0, c1, r1, ...]), the order `dpo_loss_fn` reads."""

    chosen: list[tinker.types.Datum]
    rejected: list[tinker.types.Datum]
    stats: PreferenceBatchStats = field(default_factory=PreferenceBatchStats)
    rows: list[int] = field(default_factory=list)  # the dataset row (comparison index) of each pair
    #: unpaired rows (KTO): whether each row's completion is desirable (its second
    #: datum is then the row's prompt with a mismatched completion); None for pairs
    desirable: list[bool] | None = None

    @property
    def datums(self) -> list[tinker.types.Datum]:
        return [d for pair in zip(self.chosen, self.rejected, strict=True) for d in pair]

    def __len__(self) -> int:
        return len(self.chosen)


def trainable(messages: Sequence[Message], train: bool) -> list[Message]:
    """Copies marked for `train_on_what=customized`: a completion's assistant
    messages are trained, everything else (prompt, tool results) is not."""
    return [{**m, "trainable": train and m["role"] == "assistant"} for m in messages]  # type: ignore[typeddict-item]


class PreferenceDataset(SupervisedDataset):
    """Usable comparisons rendered as (chosen, rejected) Datum pairs, served in
    seeded per-epoch batches of `batch_size` pairs (`set_epoch`, `__len__`,
    `build_batch`, `all_batches` as on the supervised datasets).

    `skipped` counts the rows left out before batching (ties, empty or identical
    completions, rows a builder could not read), by reason."""

    def __init__(
        self,
        comparisons: Sequence[LabeledComparison],
        renderer: Renderer,
        batch_size: int,
        max_length: int | None = None,
        seed: int = 0,
        name: str = "dataset",
        skipped: Counter[str] | dict[str, int] | None = None,
    ) -> None:
        if max_length is not None and max_length < 2:
            raise CookbookError(f"max_length must be at least 2, got {max_length}")
        sides = self.make_sides(comparisons, batch_size, name)
        self.max_length = max_length
        self.name = name
        self.skipped: Counter[str] = Counter(skipped or {})
        # The conversation dataset renders the sides (one batched tokenizer call
        # per batch) and names the row's file and line in any rendering error.
        self._sides = ConversationDataset(sides, renderer, 1, None, TrainOnWhat.CUSTOMIZED, seed, name=name)
        super().__init__(len(sides) // 2, batch_size, seed)

    def make_sides(self, comparisons: Sequence[Any], batch_size: int, name: str) -> list[Conversation]:
        """The two conversations of each row: row i is `sides[2i]` (chosen) and `sides[2i + 1]` (rejected)."""
        self.comparisons = list(comparisons)
        sides: list[Conversation] = []
        for lc in self.comparisons:
            try:
                chosen, rejected = lc.chosen_and_rejected()
            except CookbookError:
                raise CookbookError(f"{lc.source or name}: a tie cannot be trained on; filter with ComparisonSet.usable()") from None
            prompt = trainable(lc.comparison.prompt_conversation, False)
            for completion in (chosen, rejected):
                sides.append(Conversation(prompt + trainable(completion, True), lc.comparison.tools, source=lc.source))
        return sides

    @property
    def renderer(self) -> Renderer:
        return self._sides.renderer

    def build_rows(self, rows: Iterable[int]) -> PreferenceBatch:
        """The pairs of the given comparison indices (a pair with a side that
        keeps no completion token within max_length is skipped and counted)."""
        from cookbook_cli.data.datum import datum_from_tokens_weights

        rows = list(rows)
        rendered = self._sides.tokens_and_weights([2 * r + k for r in rows for k in (0, 1)])
        batch = PreferenceBatch([], [])
        stats = batch.stats
        for i in range(len(rows)):
            (tc, wc), (tr, wr) = rendered[2 * i], rendered[2 * i + 1]
            cut = self.max_length is not None and max(len(tc), len(tr)) > self.max_length
            if cut:
                stats.truncated += 1
            limit = self.max_length or max(len(tc), len(tr))
            kept_c = sum(1 for w in wc[1:limit] if w > 0)
            kept_r = sum(1 for w in wr[1:limit] if w > 0)
            if kept_c == 0 or kept_r == 0:
                stats.skipped += 1
                continue
            batch.chosen.append(datum_from_tokens_weights(tc, wc, self.max_length))
            batch.rejected.append(datum_from_tokens_weights(tr, wr, self.max_length))
            batch.rows.append(rows[i])
            stats.pairs += 1
            stats.tokens += min(len(tc), limit) - 1 + min(len(tr), limit) - 1
            stats.loss_tokens += kept_c + kept_r
        return batch

    def build_batch(self, index: int) -> PreferenceBatch:
        return self.build_rows(self.batch_indices(index))

    def get_batch(self, index: int) -> list[tinker.types.Datum]:
        return self.build_batch(index).datums

    def all_batches(self) -> list[PreferenceBatch]:
        """Every pair in file order, in batches (the last may be short): for evaluation."""
        n = self.num_rows
        return [self.build_rows(range(i, min(i + self.batch_size, n))) for i in range(0, n, self.batch_size)]

    def validate(self, require_trainable: bool = True, chunk: int = 128) -> None:
        """Render every pair now (errors name the comparison's file and line) and,
        with `require_trainable`, refuse a dataset in which no pair keeps a
        completion token on both sides within max_length."""
        self._sides.validate(require_trainable=False)
        if not require_trainable:
            return
        for start in range(0, self.num_rows, chunk):
            if self.build_rows(range(start, min(start + chunk, self.num_rows))).stats.pairs:
                return
        raise CookbookError(
            f"dataset {self.name} has nothing to train on: in none of its {self.num_rows} pairs do both completions "
            f"keep a token within max_length={self.max_length}; raise --max-length or shorten the prompts"
        )
