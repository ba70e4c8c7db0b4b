"""Unpaired preference rows (KTO's data): a prompt, one completion, and whether
that completion is desirable.

A file is JSONL, one row per line, in TRL's unpaired preference shape:
`{"prompt": [...] or "text", "completion": [...] or "text", "label": true | false}`
(true: desirable), optionally with `"tools": [...]`. A comparison file can be
read as unpaired rows too (`rows_from_comparisons`): each pair gives its chosen
completion as a desirable row and its rejected one as an undesirable row.

`UnpairedDataset` serves rows as the preference losses read them: row i is two
Datums, its completion and, for KTO's reference point, the same prompt with the
completion of another row of its batch (a different prompt's: the mismatched
pair). The rows are cut, in the dataset's order (a seeded shuffle of the
split), into fixed batches of `batch_size` consecutive rows; each epoch serves
those batches in a new seeded order. So every row's mismatched partner is in
its own batch, as the KTO paper estimates it, and is the same in every epoch,
so the reference's logprobs of it are computed once and kept with the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cookbook_cli.conversations import Conversation, parse_tools
from cookbook_cli.errors import CookbookError
from cookbook_cli.preference.data import PreferenceBatch, PreferenceDataset, trainable
from cookbook_cli.preference.types import SKIP_EMPTY, LabeledComparison, is_empty_completion
from cookbook_cli.types import Message, ToolSpec



@dataclass(frozen=True)
class UnpairedExample:
    prompt: list[Message]
    completion: list[Message]
    desirable: bool
    tools: list[ToolSpec] = field(default_factory=list)
    source: str | None = field(default=None, compare=False)

    def skip_reason(self) -> str | None:
        """Why this row teaches nothing, or None when it is usable."""
        return SKIP_EMPTY if is_empty_completion(self.completion) else None

    def to_json(self) -> dict[str, Any]:
        from cookbook_cli.types import message_to_json

        out: dict[str, Any] = {
            "prompt": [message_to_json(m) for m in self.prompt],
            "completion": [message_to_json(m) for m in self.completion],
            "label": self.desirable,
        }
        if self.tools:
            out["tools"] = [t.to_openai() for t in self.tools]
        return out


def parse_unpaired(obj: Any, where: str) -> UnpairedExample:
    """One decoded line as an unpaired row."""
    from cookbook_cli.preference.data import completion_messages, prompt_messages

    if not isinstance(obj, dict):
        raise CookbookError(f"{where}: expected a JSON object with 'prompt', 'completion' and 'label'; got {type(obj).__name__}")
    if "chosen" in obj or "comparison" in obj:
        raise CookbookError(
            f"{where}: a comparison, not an unpaired row; read a comparison file with dataset=unpaired_pairs "
            "(its chosen completions desirable, its rejected ones not)"
        )
    for key in ("prompt", "completion", "label"):
        if key not in obj:
            raise CookbookError(f"{where}: missing field {key!r} (an unpaired row is {{\"prompt\", \"completion\", \"label\": true|false}})")
    if not isinstance(obj["label"], bool):
        raise CookbookError(f"{where}: field 'label' must be true (desirable) or false (undesirable), got {obj['label']!r}")
    completion = completion_messages(obj["completion"], where, "completion")
    return UnpairedExample(prompt_messages(obj["prompt"], where, "prompt"), completion, obj["label"], parse_tools(obj.get("tools"), where), where)


def load_unpaired(path: str | Path) -> list[UnpairedExample]:
    from cookbook_cli.user_files import iter_jsonl

    rows = [parse_unpaired(obj, where) for _, where, obj in iter_jsonl(path, "unpaired preference file")]
    if not rows:
        raise CookbookError(f"unpaired preference file {str(path)!r} holds no rows")
    return rows


def rows_from_comparisons(comparisons: Iterable[LabeledComparison]) -> list[UnpairedExample]:
    """Each usable comparison as two rows: its chosen completion desirable, its rejected one not."""
    rows = []
    for lc in comparisons:
        chosen, rejected = lc.chosen_and_rejected()
        c = lc.comparison
        rows += [UnpairedExample(c.prompt_conversation, chosen, True, c.tools, lc.source),
                 UnpairedExample(c.prompt_conversation, rejected, False, c.tools, lc.source)]
    return rows


def mismatched_partners(rows: Sequence[UnpairedExample], batch_size: int) -> list[int]:
    """For each row, the row whose completion makes its mismatched pair: the
    next row of its batch (cyclically) with another prompt; failing that (a
    batch of one prompt), the next such row of the dataset."""
    n = len(rows)

    def key(r: UnpairedExample) -> str:
        return repr((r.prompt, r.tools))

    keys = [key(r) for r in rows]
    partners = []
    for i in range(n):
        start = i - i % batch_size
        size = min(batch_size, n - start)
        in_batch = [start + (i - start + k) % size for k in range(1, size)]
        outside = [(start + size + k) % n for k in range(n - size)]
        partner = next((j for j in (*in_batch, *outside) if keys[j] != keys[i]), None)
        if partner is None:
            raise CookbookError(
                "every unpaired row has the same prompt; KTO's reference point needs completions of other prompts"
            )
        partners.append(partner)
    return partners


class UnpairedDataset(PreferenceDataset):
    """Unpaired rows as (completion, mismatched completion) Datum pairs in fixed
    batches served in a seeded order per epoch; `build_rows` sets each batch's
    `desirable` labels."""

    def make_sides(self, examples: Sequence[UnpairedExample], batch_size: int, name: str) -> list[Conversation]:
        """Row i: its completion, and its prompt with its mismatched partner's completion."""
        self.examples = list(examples)
        self.partners = mismatched_partners(self.examples, batch_size)
        sides = []
        for ex, partner in zip(self.examples, self.partners, strict=True):
            prompt = trainable(ex.prompt, False)
            for completion in (ex.completion, self.examples[partner].completion):
                sides.append(Conversation(prompt + trainable(completion, True), ex.tools, source=ex.source))
        return sides

    def batch_indices(self, index: int) -> list[int]:
        """The rows of fixed batch `order[index]` (consecutive rows), in this epoch's order of the batches."""
        from cookbook_cli.data.order import shuffled_order

        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (dataset has {len(self)} batches)")
        if self._order is None:
            self._order = shuffled_order(len(self), self.epoch_seed)
        start = self._order[index] * self.batch_size
        return list(range(start, start + self.batch_size))

    def build_rows(self, rows: Iterable[int]) -> PreferenceBatch:
        batch = super().build_rows(rows)
        batch.desirable = [self.examples[r].desirable for r in batch.rows]
        return batch
