"""Teachers: what the engine samples from, which tokens it sees, and how the
student's tokens reach it.

A teacher is named the way a user names a model:

- a `runs/...` directory of an earlier run (`train sl`, `train distill`, ...):
  its final sampler weights (the final record of checkpoints.jsonl), with the
  run's base model, renderer and engine from its config.json;
- a path with `://` (a Tinker sampler path): passed to the engine as is;
- a model name or folder (a Hub id, a local Hugging Face folder, or a name
  the engine knows, such as the local engine's `random:<shape>:<tokenizer>`).

A name that looks like a local path (see `models.inputs.looks_like_path`)
and does not exist is refused in one line.

`plan_scoring` decides how the teacher grades the student's tokens: `tokens`
when the teacher's renderer and tokenizer give exactly the student's tokens
for the prompts (the teacher scores the student's token ids), `rerender`
when they differ and the prompts are conversations (see `align`), and refuses
in one line when neither is possible.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.conversations import Conversation
    from cookbook_cli.engines.protocol import SamplingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.run.reader import RunReader
    from cookbook_cli.tokenizers import Tokenizer


@dataclass(frozen=True)
class Teacher:
    spec: str  # as given
    base_model: str | None  # create_sampling_client(base_model=...)
    model_path: str | None  # create_sampling_client(model_path=...)
    renderer: str | None  # the renderer the teacher was trained with (runs), else None
    tokenizer: str | None  # tokenizer source; None: known once the client exists
    identity: str  # what the teacher is, for caches

    async def client(self, service: Any) -> SamplingClient:
        if self.model_path is not None:
            return await service.create_sampling_client_async(model_path=self.model_path)
        return await service.create_sampling_client_async(base_model=self.base_model)


def resolve_teacher(spec: str, engine: str) -> Teacher:
    """What `spec` names (see the module docstring); one line when it names nothing."""
    from cookbook_cli.local_paths import refuse_missing_path
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.run.reader import RunReader

    if not spec.strip():
        raise CookbookError("--teacher is empty; give a model, a runs/... directory of a finished run, or a tinker:// path")
    if "://" in spec:
        return Teacher(spec, None, spec, None, None, f"path:{spec}")
    run = RunReader.at(spec)
    if run is not None:
        return _teacher_run(spec, run, engine)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() != ".gguf":  # a .gguf is a model input (models.resolve_model_input)
        raise CookbookError(f"teacher {spec!r} is a file; give a model folder, a runs/... directory or a model name")
    refuse_missing_path(spec, "teacher", "give a model (Hub id or folder), a runs/... directory of a finished run, or a tinker:// sampler path")
    source = str(path.resolve()) if path.is_dir() else spec
    return Teacher(spec, source, None, None, tokenizer_for_model(source, engine), f"model:{source}")


def _teacher_run(spec: str, run: RunReader, engine: str) -> Teacher:
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.run.files import CONFIG

    record = run.final_sampler()
    if record is None:
        raise CookbookError(
            f"teacher run {spec!r} has no final sampler weights (it has not finished); "
            "finish it with --if-exists resume, or name a model"
        )
    config = run.stored_config()
    model, run_engine = config.get("model"), config.get("engine")
    if not isinstance(model, str):
        raise CookbookError(f"teacher run {spec!r}: {run.path / CONFIG} names no model")
    if run_engine and run_engine != engine:
        raise CookbookError(
            f"teacher run {spec!r} was trained on engine {run_engine!r}, and this run uses {engine!r}; "
            f"its weights load on {run_engine!r} only (pass --engine {run_engine})"
        )
    sampler = str(record["sampler_path"])
    if "://" not in sampler:
        sampler = run.absolute(sampler)
        if not Path(sampler).exists():
            raise CookbookError(f"teacher run {spec!r}: its final sampler weights {sampler!r} are missing")
    files = json.dumps(record.get("files") or {}, sort_keys=True)
    identity = f"run:{record.get('name')}:{hashlib.sha256(files.encode()).hexdigest()[:16]}:{sampler if '://' in sampler else ''}"
    renderer = config.get("renderer") if isinstance(config.get("renderer"), str) else None
    return Teacher(spec, model, sampler, renderer, tokenizer_for_model(model, engine), identity)


def teacher_tokenizer_after_start(teacher: Teacher, client: SamplingClient, engine: str) -> str:
    """The tokenizer source of a teacher only the engine could describe (a tinker:// path)."""
    from cookbook_cli.models import tokenizer_for_model

    if teacher.tokenizer is not None:
        return teacher.tokenizer
    return tokenizer_for_model(client.get_base_model(), engine)


# -- how the teacher grades ------------------------------------------------------------------------


@dataclass
class ScoringPlan:
    mode: str  # "tokens" or "rerender"
    renderer: Renderer  # the teacher's


def _same_tokens(student: Renderer, teacher: Renderer, prompts: Sequence[Conversation]) -> bool:
    from cookbook_cli.distill.prompts import prompt_tokens

    s_tok, t_tok = student.tokenizer, teacher.tokenizer
    if s_tok.vocab_size != t_tok.vocab_size:
        return False
    if not prompts:
        # nothing to render (an env's token observations): the tokenizers must be the same
        probe = "Hello, world! 123 The quick brown fox."
        return s_tok.source == t_tok.source or (s_tok.encode(probe) == t_tok.encode(probe) and student.name == teacher.name)
    try:
        return all(prompt_tokens(student, p) == prompt_tokens(teacher, p) for p in prompts)
    except CookbookError:
        return False


def plan_scoring(
    teacher: Teacher,
    tokenizer: Tokenizer,
    teacher_renderer: str | None,
    student: Renderer,
    prompts: Sequence[Conversation] | None,
    source: str,
    off_policy: bool = False,
) -> ScoringPlan:
    """How the teacher grades (see the module docstring). `prompts`: a few of
    the source's prompts, None when it is an env (token observations)."""
    from cookbook_cli.renderers import get_renderer

    explicit = teacher_renderer is not None
    name = teacher_renderer or teacher.renderer or student.name
    renderer = get_renderer(name, tokenizer)
    if _same_tokens(student, renderer, prompts or []):
        return ScoringPlan("tokens", renderer)
    s_tok = student.tokenizer
    what = (
        f"tokenizer {tokenizer.source!r} ({tokenizer.vocab_size} tokens) against the student's "
        f"{s_tok.source!r} ({s_tok.vocab_size} tokens)"
        if tokenizer.vocab_size != s_tok.vocab_size or tokenizer.source != s_tok.source
        else f"renderer {name!r} against the student's {student.name!r}"
    )
    if off_policy:
        raise CookbookError(
            f"teacher {teacher.spec!r} gives other tokens than the student ({what}); off-policy distillation trains on the "
            "teacher's top-K token ids, so the teacher must share the student's tokenizer and renderer"
        )
    if prompts is None:
        raise CookbookError(
            f"teacher {teacher.spec!r} gives other tokens than the student ({what}), and {source} gives token observations, "
            "which cannot be re-rendered for it; use a teacher with the student's tokenizer, or prompts (--prompts, --dataset)"
        )
    if not explicit and name == student.name:
        raise CookbookError(
            f"teacher {teacher.spec!r} has another vocabulary than the student ({what}): its logprobs of the student's tokens "
            "would be meaningless; pass --teacher-renderer NAME to re-render each completion for the teacher, "
            "or use a student with the teacher's tokenizer (--model)"
        )
    _probe_alignment(student, renderer, prompts, teacher.spec)
    return ScoringPlan("rerender", renderer)


def _probe_alignment(student: Renderer, teacher: Renderer, prompts: Sequence[Conversation], spec: str) -> None:
    """Re-render a reply made of the first prompt's own words, so a pair of
    formats that can never align is refused before the run starts."""
    from cookbook_cli.distill.align import Aligner, AlignmentError
    from cookbook_cli.types import TrainOnWhat, text_of

    prompt = prompts[0]
    words = text_of(prompt.messages[-1]).split()[:6] or ["ok"]
    reply = {"role": "assistant", "content": " ".join(words)}
    head = student.build_generation_tokens(prompt.messages, tools=prompt.tools or None)
    full, _ = student.build_supervised_tokens([*prompt.messages, reply], TrainOnWhat.LAST_ASSISTANT_MESSAGE, prompt.tools or None)
    completion = full[len(head) :]
    aligner = Aligner(student, teacher)
    try:
        rerendered, content = aligner.rerender(prompt, completion)
        aligner.align(completion, rerendered, [0.0] * (len(rerendered.tokens) - rerendered.start), content)
    except AlignmentError as e:
        raise CookbookError(
            f"teacher {spec!r} with renderer {teacher.name!r} cannot grade the student's {student.name!r} completions: {e}"
        ) from None
