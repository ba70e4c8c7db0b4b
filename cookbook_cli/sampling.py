"""`cookbook sample`: answer every conversation of a file with a model or checkpoint.

Each output line is the prompt conversation with the sampled assistant message
appended, so the output is a conversation file that `train sl` reads (the path
for sequence-level distillation and rejection sampling), plus a `sample`
object that says which prompt it answers and how the response ended:

    {"messages": [..., {"role": "assistant", "content": "..."}],
     "sample": {"prompt": 3, "prompt_hash": "9f2c...", "index": 0,
                "termination": "stop", "logprob": -12.7, "tokens": 31}}

The output is resumable: re-running with the same `--out` keeps what is there
and samples only the prompts (and, with a larger `-n`, the samples) that are
missing. `<out>.meta.json` records the model and sampling settings; resuming
with others is refused, since the file would mix two models' answers.
A line cut short by a killed write is dropped and sampled again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.completers import Completion, SamplingSettings
    from cookbook_cli.conversations import Conversation
    from cookbook_cli.engines.protocol import SamplingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.sources import ModelSource


@dataclass
class Prompt:
    index: int  # position among the file's conversations
    line: int
    conversation: Conversation
    key: str  # hash of the conversation: a resumed output must answer the same prompts


@dataclass
class SampleSummary:
    out: Path
    prompts: int
    samples_per_prompt: int
    already_written: int  # prompts complete before this call
    written: int = 0  # rows written by this call
    terminations: Counter[str] = field(default_factory=Counter)


def prompt_key(conversation: Conversation) -> str:
    blob = json.dumps(conversation.to_json(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def read_prompts(path: str | Path, replace_final: bool = False) -> list[Prompt]:
    """The prompt conversations of a JSONL file. A conversation that ends with an
    assistant message is refused (it would be answered by a second assistant
    message) unless `replace_final`, which drops that message and samples a new one."""
    from cookbook_cli.conversations import Conversation, parse_conversation, refuse_system_last
    from cookbook_cli.user_files import iter_jsonl, prompts_path

    p = prompts_path(path)
    if not p.is_file():
        raise CookbookError(f"prompt file {str(p)!r} does not exist" if not p.exists() else f"{str(p)!r} is not a file")
    prompts: list[Prompt] = []
    for lineno, where, obj in iter_jsonl(p, "prompt file"):
        conv = parse_conversation(obj, where)
        refuse_system_last(conv, where)
        if conv.messages[-1]["role"] == "assistant":
            if not replace_final:
                raise CookbookError(
                    f"{where}: the conversation ends with an assistant message; sample appends a new assistant reply, "
                    "so give conversations that end with a user (or tool) message, or pass --replace-final to drop "
                    "that final assistant message and sample a new one in its place"
                )
            conv = Conversation(conv.messages[:-1], conv.tools)
            if not conv.messages:
                raise CookbookError(f"{where}: nothing is left to prompt with once the final assistant message is dropped")
        prompts.append(Prompt(len(prompts), lineno, conv, prompt_key(conv)))
    if not prompts:
        raise CookbookError(f"prompt file {str(p)!r} holds no conversations")
    return prompts


# -- the output file --------------------------------------------------------------------------


def _meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".meta.json")


def _existing(out: Path, prompts: list[Prompt]) -> dict[int, int]:
    """Samples already written per prompt index. A torn last line (a killed
    write) is cut off the file; a line for another prompt file is an error."""
    if not out.exists():
        return {}
    data = out.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with out.open("r+b") as f:
            f.truncate(len(complete))
    counts: Counter[int] = Counter()
    for lineno, raw in enumerate(complete.split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        where = f"{out}:{lineno}"
        try:
            info = json.loads(raw)["sample"]
            index, key = int(info["prompt"]), str(info["prompt_hash"])
        except (ValueError, KeyError, TypeError):
            raise CookbookError(f"{where} is not a line written by cookbook sample; choose another --out") from None
        if index >= len(prompts) or prompts[index].key != key:
            raise CookbookError(
                f"{where} answers another prompt than conversation {index + 1} of this prompt file; "
                "--out belongs to another prompt file: choose another --out or remove it"
            )
        counts[index] += 1
    return dict(counts)


def _check_meta(out: Path, meta: dict[str, Any], resuming: bool) -> None:
    path = _meta_path(out)
    if resuming and path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise CookbookError(f"{path} is not valid JSON; remove it and {out} to start over") from None
        from cookbook_cli.config import config_differences

        diffs = config_differences(old, meta)
        if diffs:
            raise CookbookError(
                f"{out} was sampled with other settings ({'; '.join(diffs[:3])}); resuming would mix them: "
                "use the same settings, or another --out"
            )
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _append(out: Path, rows: list[dict[str, Any]]) -> None:
    """All rows of one prompt in one write, fsynced: a kill leaves at most a torn last line."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    with out.open("a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def output_row(prompt: Prompt, completion: Completion, index: int) -> dict[str, Any]:
    from cookbook_cli.conversations import Conversation

    row = Conversation([*prompt.conversation.messages, completion.message], prompt.conversation.tools).to_json()
    row["sample"] = {
        "prompt": prompt.index,
        "prompt_hash": prompt.key,
        "index": index,
        "termination": completion.termination,
        "logprob": round(completion.logprob, 6),
        "tokens": len(completion.tokens),
    }
    return row


# -- sampling ---------------------------------------------------------------------------------


def prompt_seed(seed: int | None, index: int) -> int | None:
    """Each prompt's own seed, so a resumed file holds the replies one uninterrupted
    call would have written (their logprobs to the float rounding of the decode
    batch each prompt shared; with `concurrency=1`, to the bit)."""
    return None if seed is None else random.Random(f"{seed}/{index}").getrandbits(31)


async def sample_prompts(
    prompts: list[Prompt],
    missing: dict[int, int],
    renderer: Renderer,
    client: SamplingClient,
    settings: SamplingSettings,
    write: Callable[[Prompt, list[Completion]], None],
    concurrency: int = 8,
) -> None:
    """Sample `missing[i]` completions of each prompt (concurrently, at most
    `concurrency` prompts in flight) and hand them to `write` in prompt order."""
    from dataclasses import replace

    from cookbook_cli.completers import RendererMessageCompleter

    gate = asyncio.Semaphore(concurrency)

    async def one(p: Prompt) -> list[Completion]:
        async with gate:
            completer = RendererMessageCompleter.over(renderer, client, replace(settings, seed=prompt_seed(settings.seed, p.index)))
            return await completer(p.conversation.messages, p.conversation.tools or None, missing[p.index])

    todo = [p for p in prompts if missing.get(p.index, 0) > 0]
    for p in todo:  # refuse what the renderer cannot write before sampling anything
        try:
            renderer.check_messages(p.conversation.messages, p.conversation.tools or None)
        except CookbookError as e:
            raise CookbookError(f"prompt {p.index + 1} (line {p.line}): {e}") from None
    tasks = [asyncio.ensure_future(one(p)) for p in todo]
    try:
        for p, task in zip(todo, tasks):
            write(p, await task)
    finally:
        for t in tasks:
            t.cancel()


def sample_file(
    prompts_path: str | Path,
    out: str | Path,
    source: ModelSource,
    settings: SamplingSettings,
    num_samples: int = 1,
    replace_final: bool = False,
    progress: bool | None = None,
    concurrency: int = 8,
) -> SampleSummary:
    """Sample `num_samples` answers to each conversation of `prompts_path` into
    `out` (resumable; see the module docstring)."""
    from cookbook_cli.run.progress import StepProgress
    from cookbook_cli.sources import open_sampler, renderer_for

    if num_samples < 1:
        raise CookbookError(f"-n must be at least 1, got {num_samples}")
    settings.check()
    prompts = read_prompts(prompts_path, replace_final)
    out_path = Path(out).expanduser()
    if out_path.is_dir():
        raise CookbookError(f"--out {str(out_path)!r} is a folder; give a .jsonl file")
    if not out_path.parent.is_dir():
        raise CookbookError(f"cannot write {str(out_path)!r}: folder {str(out_path.parent)!r} does not exist")
    renderer = renderer_for(source)
    have = _existing(out_path, prompts)
    missing = {p.index: max(0, num_samples - have.get(p.index, 0)) for p in prompts}
    settings_meta = {k: v for k, v in asdict(settings).items()}
    _check_meta(out_path, {"model": source.to_json(), "sampling": settings_meta, "replace_final": replace_final}, resuming=bool(have))
    summary = SampleSummary(out_path, len(prompts), num_samples, sum(1 for p in prompts if missing[p.index] == 0))
    if all(m == 0 for m in missing.values()):
        return summary
    done = [summary.already_written]
    with StepProgress(len(prompts), "sample", start=done[0], plain=None if progress is None else not progress, unit="prompt", every=5.0) as bar:

        def write(p: Prompt, completions: list[Completion]) -> None:
            first = have.get(p.index, 0)
            _append(out_path, [output_row(p, c, first + j) for j, c in enumerate(completions)])
            summary.written += len(completions)
            summary.terminations.update(c.termination for c in completions)
            done[0] += 1
            ended = summary.terminations
            bar.update(done[0], stop=(ended["stop"] + ended["eos"]) or None, length=ended["length"] or None, malformed=ended["malformed"] or None)

        with open_sampler(source) as client:
            asyncio.run(sample_prompts(prompts, missing, renderer, client, settings, write, concurrency))
    return summary
