"""`cookbook train distill`: a student learns from one or more teachers.

On-policy (`mode=on_policy`, the default unless the student is trained from
scratch, see `default_mode`): the student samples completions of the
teachers' prompts (a prompt file, a supervised dataset with its last
assistant turn dropped, or any registered RL env) through the RL sampler
(`rl/loop.py`, `rl/sampler.py`), synchronously or up to
`max_steps_off_policy` steps ahead; each teacher scores the student's exact
tokens (`compute_logprobs`) and the per-token advantage is

    A_t = -kl_coef * (logp_student_t - logp_teacher_t)    (discounted with kl_discount)

plus `env_reward_coef` times the env's group-centred reward advantage; the
loss is `loss_fn` (importance_sampling by default). Several teachers each
bring their own prompts, and every batch mixes them by `weight`.

Off-policy (`mode=off_policy`): on a fixed supervised dataset, the teacher's
top-K next-token distribution at every trained position (renormalised over
the K) is the soft target of a `cross_entropy` over (N, K) targets. The
teacher's top-K are cached in the run (`teacher_topk/`).

Everything else is the shared run lifecycle: validate before writing,
checkpoints every `save_every` steps, resume with `--if-exists resume`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.config import RegistryFactory, config_to_json, registry_name_of
from cookbook_cli.data.builders import ConversationsBuilder, SupervisedDatasetBuilder
from cookbook_cli.errors import CookbookError
from cookbook_cli.optim import AdamConfig, check_schedule, learning_rate_at
from cookbook_cli.plugins import registry
from cookbook_cli.rl.arithmetic import ArithmeticBuilder
from cookbook_cli.rl.types import RLDatasetBuilder
from cookbook_cli.types import TrainOnWhat

if TYPE_CHECKING:
    from cookbook_cli.distill.scoring import TeacherScorer
    from cookbook_cli.distill.teachers import Teacher
    from cookbook_cli.engines.protocol import SamplingClient, ServiceClient, TrainingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.rl.sampler import StepBatch
    from cookbook_cli.run.lifecycle import Run

DEFAULT_LORA_RANK = 32
DEFAULT_MAX_TOKENS = 64  # prompts' completions; an env brings its own
MODES = ("on_policy", "off_policy")


@chz.chz
class TeacherSource:
    """One teacher and the prompts (or env) it grades."""

    model: str = chz.field(doc="the teacher: a model (Hub id, folder, random:...), a runs/... directory of a finished run, or a tinker:// path")
    renderer: str | None = chz.field(default=None, doc="the teacher's chat format; default: its run's, else the student's")
    prompts: SupervisedDatasetBuilder = chz.field(
        default_factory=ConversationsBuilder,
        meta_factory=RegistryFactory(registry.dataset_builders, ConversationsBuilder, kinds=("prompt", "supervised"), used_by="`train distill`"),
        doc="prompt_file (prompts.path=FILE), or a supervised dataset whose last assistant turns are dropped; default: the bundled sample",
    )
    split: str = chz.field(default="train", doc="the prompts' split: train, or test (the rows the dataset holds out)")
    env: RLDatasetBuilder | None = chz.field(
        default=None,
        meta_factory=RegistryFactory(registry.envs, ArithmeticBuilder),
        doc="an RL env instead of prompts (cookbook envs list); its fields are env.<field>",
    )
    weight: float = chz.field(default=1.0, doc="this teacher's share of each batch")


@chz.chz
class DistillConfig:
    """Distillation from one or more teachers, on-policy or off-policy."""

    teachers: list[TeacherSource] = chz.field(default_factory=list, doc="the teachers: teachers.N.model=..., teachers.N.prompts=..., teachers.N.weight=...")
    mode: str | None = chz.field(
        default=None,
        doc="on_policy (reverse KL on the student's samples) or off_policy (top-K soft targets); default on_policy, "
        "off_policy for a student trained from scratch (random weights) and one teacher with a dataset, as its own samples teach it little",
    )
    log_dir: str | None = chz.field(default=None, doc="run directory; default runs/distill-<teacher>-<model>-<time>")
    engine: str = chz.field(default="local", doc="training engine (cookbook engines list)")
    model: str | None = chz.field(default=None, doc="the student's base model; default: the teacher run's base model, else follows the engine and renderer")
    renderer: str | None = chz.field(default=None, doc="the student's chat format; default: the teacher run's, else the model's")
    max_steps: int | None = chz.field(default=None, doc="training steps; default: epochs over the prompts or data")
    epochs: int = chz.field(default=1, doc="passes over the prompts (on-policy) or the data (off-policy)")
    group_size: int = chz.field(default=4, doc="on-policy: completions sampled per prompt")
    groups_per_batch: int = chz.field(default=8, doc="on-policy: prompts per step, shared among the teachers by weight")
    max_steps_off_policy: int = chz.field(default=0, doc="on-policy: 0 synchronous; K > 0 asynchronous, groups at most K steps stale")
    loss_fn: str = chz.field(default="importance_sampling", doc="on-policy loss: importance_sampling, ppo, cispo, dro or a registered loss")
    loss_fn_config: dict[str, float] | None = chz.field(default=None, doc="the loss's config, e.g. loss_fn_config.clip_low_threshold=0.9")
    kl_coef: float = chz.field(default=1.0, doc="kappa: advantage = -kappa * (student logprob - teacher logprob)")
    kl_discount: float = chz.field(default=0.0, doc="gamma: discounted future sum of the per-token advantages (0: none)")
    env_reward_coef: float = chz.field(default=0.0, doc="on-policy with an env: add this times the env's reward advantage")
    max_tokens: int | None = chz.field(default=None, doc=f"on-policy: sampled tokens per completion; default {DEFAULT_MAX_TOKENS}, or the env's")
    temperature: float = chz.field(default=1.0, doc="on-policy sampling temperature")
    topk: int = chz.field(default=20, doc="off-policy: the teacher's K most likely next tokens per position")
    batch_size: int = chz.field(default=8, doc="off-policy: examples per step")
    max_length: int | None = chz.field(default=2048, doc="off-policy: truncate examples to this many tokens")
    train_on_what: str = chz.field(default="all_assistant_messages", doc="off-policy: which tokens are trained (TrainOnWhat)")
    learning_rate: float | None = chz.field(default=None, doc="learning rate; default depends on the model")
    lr_schedule: str = chz.field(default="constant", doc="linear, cosine or constant")
    warmup_steps: int = chz.field(default=0, doc="linear warmup steps")
    lora_rank: int | None = chz.field(default=None, doc=f"LoRA rank, 0 for full fine-tuning; default {DEFAULT_LORA_RANK}")
    save_every: int = chz.field(default=20, doc="checkpoint every N steps (0: only at the end)")
    num_groups_to_log: int = chz.field(default=2, doc="on-policy: groups per step in the HTML transcripts (0: none)")
    seed: int = chz.field(default=0, doc="prompt order, sampling and adapter initialisation")
    adam: AdamConfig = chz.field(default_factory=AdamConfig, doc="optimizer")
    engine_options: dict[str, str] = chz.field(default_factory=dict, doc="passed to the engine (e.g. device, dtype)")

    @chz.validate
    def _check(self) -> None:
        check_schedule(self.lr_schedule, self.warmup_steps)
        TrainOnWhat.parse(self.train_on_what)
        if self.mode is not None and self.mode not in MODES:
            from cookbook_cli.errors import UnknownNameError

            raise UnknownNameError("distillation mode", self.mode, MODES)
        for name in ("group_size", "groups_per_batch", "epochs", "topk", "batch_size"):
            if getattr(self, name) < 1:
                raise CookbookError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps_off_policy", "save_every", "num_groups_to_log", "warmup_steps"):
            if getattr(self, name) < 0:
                raise CookbookError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_steps", "max_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CookbookError(f"{name} must be at least 1, got {value}")
        if self.max_length is not None and self.max_length < 2:
            raise CookbookError(f"max_length must be at least 2, got {self.max_length}")
        for name in ("kl_coef", "env_reward_coef", "temperature"):
            if getattr(self, name) < 0:
                raise CookbookError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.kl_discount < 1:
            raise CookbookError(f"kl_discount must be in [0, 1), got {self.kl_discount}")
        if self.lora_rank is not None and self.lora_rank < 0:
            raise CookbookError(f"lora_rank must be >= 0, got {self.lora_rank}")
        if self.learning_rate is not None and self.learning_rate < 0:
            raise CookbookError(f"learning_rate must be >= 0, got {self.learning_rate}")
        if self.env_reward_coef > 0 and self.group_size == 1:
            raise CookbookError("env_reward_coef > 0 with group_size=1 adds nothing (rewards are centred within a group); use --group-size 2 or more")


# -- resolving ------------------------------------------------------------------------------------


def teacher_labels(teachers: Sequence[TeacherSource]) -> list[str]:
    """Short, distinct names of the teachers for metrics (`teacher_kl/<label>`)."""
    from cookbook_cli.run.lifecycle import slug

    labels: list[str] = []
    for i, t in enumerate(teachers):
        label = slug(t.model.rstrip("/").replace(":", "-"), 24)
        labels.append(label if label not in labels else f"{label}-{i}")
    return labels


def _resolve_teachers(config: DistillConfig) -> list[Teacher]:
    from cookbook_cli.distill.teachers import resolve_teacher

    if not config.teachers:
        raise CookbookError("no teacher: pass --teacher (a model, a runs/... directory of a finished run, or a tinker:// path)")
    if config.mode == "off_policy":
        if len(config.teachers) > 1:
            raise CookbookError(f"off-policy distillation takes one teacher, got {len(config.teachers)}")
        if config.teachers[0].env is not None:
            raise CookbookError("off-policy distillation trains on a supervised dataset (--dataset), not an env")
    return [resolve_teacher(t.model, config.engine) for t in config.teachers]


def resolve(config: DistillConfig) -> DistillConfig:
    """Fill in the defaults that depend on other fields. With neither --model
    nor --renderer and a teacher that is a run, the student is a fresh copy of
    the teacher run's base model with its renderer."""
    from cookbook_cli import models
    from cookbook_cli.run.lifecycle import check_log_dir, default_log_dir

    registry.loss_functions.get(config.loss_fn)  # unknown names fail here, with suggestions
    teachers = _resolve_teachers(config)
    model, renderer = config.model, config.renderer
    first = teachers[0]
    if model is None and renderer is None and first.model_path is not None and first.base_model is not None:
        model, renderer = first.base_model, first.renderer
    model, renderer = models.resolve_model_and_renderer(config.engine, model, renderer)
    rank = config.lora_rank if config.lora_rank is not None else DEFAULT_LORA_RANK
    lr = config.learning_rate if config.learning_rate is not None else models.default_learning_rate(model, config.engine, rank)
    mode = config.mode or default_mode(config, model)
    max_tokens = config.max_tokens
    if max_tokens is None:
        envs = [t.env for t in config.teachers if t.env is not None]
        max_tokens = max([int(e.default_max_tokens) for e in envs] + ([DEFAULT_MAX_TOKENS] if len(envs) < len(config.teachers) else []))
    log_dir = config.log_dir
    if log_dir is None:
        log_dir = str(default_log_dir("distill", teacher_labels(config.teachers)[0], models.model_label(model, config.engine)))
    check_log_dir(log_dir)
    return chz.replace(
        config, mode=mode, model=model, renderer=renderer, lora_rank=int(rank), learning_rate=float(lr), max_tokens=int(max_tokens), log_dir=log_dir
    )


def default_mode(config: DistillConfig, student: str) -> str:
    """on_policy, except for a student trained from scratch: its samples are near-uniform over the
    vocabulary, so the teacher's grades of them barely move it (teacher KL 3.55 -> 3.53 in 8 steps
    on the demo), while the teacher's top-K targets teach it at once (9.1 -> 1.7 in 7 steps)."""
    from cookbook_cli import models
    from cookbook_cli.distill.prompts import PromptFileBuilder

    spec = models.model_spec(student, config.engine)
    scratch = spec is not None and spec.from_scratch
    [first, *others] = config.teachers
    # Off-policy trains on conversations with replies: not an env's problems or a file of prompts.
    supervised = not others and first.env is None and not isinstance(first.prompts, PromptFileBuilder)
    return "off_policy" if scratch and supervised else "on_policy"


#: Settings a resumed run may change, as in `train rl`.
RESUME_MAY_CHANGE = ("log_dir", "max_steps", "save_every", "num_groups_to_log")


def config_json(config: DistillConfig) -> dict[str, Any]:
    out = config_to_json(config)
    out["teachers"] = [config_to_json(t, {"prompts": registry.dataset_builders, "env": registry.envs}) for t in config.teachers]
    return out


# -- the run -----------------------------------------------------------------------------------


@dataclass
class DistillResult:
    log_dir: Path
    mode: str
    total_steps: int
    start_step: int
    steps_done: int
    metrics: list[dict[str, Any]] = field(default_factory=list)  # rows of this invocation
    final_checkpoint: dict[str, Any] | None = None
    elapsed: float = 0.0

    def series(self, key: str) -> list[float]:
        return [float(r[key]) for r in self.metrics if key in r]


def train(
    config: DistillConfig,
    if_exists: str = "fail",
    service: ServiceClient | Any = None,
    progress: bool | None = None,
    on_log: Any = None,
    argv: list[str] | None = None,
    log_to: Sequence[str] = (),
    logger_options: Mapping[str, Mapping[str, str]] | None = None,
) -> DistillResult:
    """Run distillation as configured: the library entry point of `cookbook train distill`.
    The arguments are those of `cookbook_cli.recipes.rl.train`."""
    return asyncio.run(train_async(config, if_exists, service, progress, on_log, argv, log_to, logger_options))


async def train_async(
    config: DistillConfig,
    if_exists: str = "fail",
    service: ServiceClient | Any = None,
    progress: bool | None = None,
    on_log: Any = None,
    argv: list[str] | None = None,
    log_to: Sequence[str] = (),
    logger_options: Mapping[str, Mapping[str, str]] | None = None,
) -> DistillResult:
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.run.lifecycle import RunSettings
    from cookbook_cli.tokenizers import get_tokenizer

    cfg = resolve(config)
    assert cfg.log_dir is not None and cfg.model is not None and cfg.renderer is not None
    teachers = _resolve_teachers(cfg)
    tokenizer = get_tokenizer(tokenizer_for_model(cfg.model, cfg.engine))
    student = get_renderer(cfg.renderer, tokenizer)
    settings = RunSettings(
        "distill", cfg.log_dir, config_json(cfg), cfg.engine, cfg.engine_options, if_exists, RESUME_MAY_CHANGE, argv, log_to, logger_options or {}
    )
    args = (cfg, settings, teachers, student, service, progress, on_log)
    return await (_on_policy(*args) if cfg.mode == "on_policy" else _off_policy(*args))


def _plan(cfg: DistillConfig, i: int, teacher: Teacher, student: Renderer, prompts: Any, source: str, tokenizer: str | None) -> Any:
    from cookbook_cli.distill.teachers import plan_scoring
    from cookbook_cli.tokenizers import get_tokenizer

    if tokenizer is None:
        return None  # known once the teacher's client exists
    return plan_scoring(
        teacher, get_tokenizer(tokenizer), cfg.teachers[i].renderer, student, prompts, source, off_policy=cfg.mode == "off_policy"
    )


async def _scorers(
    cfg: DistillConfig, run: Run, teachers: Sequence[Teacher], plans: list[Any], student: Renderer, labels: list[str],
    probes: list[Any], sources: list[str],
) -> tuple[list[SamplingClient], list[TeacherScorer]]:
    from cookbook_cli.distill.scoring import TeacherScorer
    from cookbook_cli.distill.teachers import teacher_tokenizer_after_start

    clients, scorers = [], []
    for i, teacher in enumerate(teachers):
        client = await teacher.client(run.service)
        plan = plans[i] or _plan(cfg, i, teacher, student, probes[i], sources[i], teacher_tokenizer_after_start(teacher, client, cfg.engine))
        clients.append(client)
        scorers.append(TeacherScorer(labels[i], client, plan, student))
    return clients, scorers


async def _on_policy(
    cfg: DistillConfig, settings: Any, teachers: list[Teacher], student: Renderer, service: Any, progress: bool | None, on_log: Any
) -> DistillResult:
    from cookbook_cli.distill.mixing import MixedDataset, group_counts
    from cookbook_cli.distill.prompts import PromptDataset, load_prompts
    from cookbook_cli.completers import SamplingClientCompleter
    from cookbook_cli.rl.loop import LoopSettings, run_sampler_loop
    from cookbook_cli.rl.types import EnvContext
    from cookbook_cli.run.lifecycle import open_run

    labels = teacher_labels(cfg.teachers)
    counts = group_counts([t.weight for t in cfg.teachers], cfg.groups_per_batch, labels)
    # The data and the teachers' compatibility first: bad input fails before any model loads.
    datasets, plans, probes, sources = [], [], [], []
    for i, (src, teacher) in enumerate(zip(cfg.teachers, teachers, strict=True)):
        if src.env is not None:
            name = registry_name_of(registry.envs, src.env) or type(src.env).__name__
            ctx = EnvContext(name, student, student.tokenizer, cfg.group_size, counts[i], cfg.seed)
            dataset, _ = src.env(ctx)
            if len(dataset) == 0:
                raise CookbookError(f"env {name!r} made an empty dataset; check its options (cookbook envs list)")
            source, probe = f"env {name!r}", None
        else:
            prompts = load_prompts(src.prompts, cfg.seed, src.split)
            source = f"prompts {src.prompts.describe()}"
            dataset = PromptDataset(prompts, student, cfg.group_size, counts[i], cfg.epochs, cfg.seed, name=source)
            probe = prompts[:8]
        datasets.append(dataset)
        sources.append(source)
        probes.append(probe)
        plans.append(_plan(cfg, i, teacher, student, probe, source, teacher.tokenizer))
    mixed = MixedDataset(datasets, labels)
    total_steps = len(mixed) if cfg.max_steps is None else min(cfg.max_steps, len(mixed))

    with open_run(settings, service, on_log) as run:
        start = run.start_position(len(mixed), total_steps)
        t_start = time.monotonic()
        tc = await run.training_client_async(cfg.model, cfg.lora_rank, cfg.seed)
        _, scorers = await _scorers(cfg, run, teachers, plans, student, labels, probes, sources)
        assert cfg.max_tokens is not None
        max_tokens, temperature = cfg.max_tokens, cfg.temperature

        def make_completer(client: SamplingClient, rollout_index: int) -> SamplingClientCompleter:
            return SamplingClientCompleter(client, max_tokens, temperature, seed=cfg.seed * 1_000_003 + rollout_index)

        step = _OnPolicyStep(cfg, run, tc, student, scorers, total_steps)
        loop = LoopSettings(
            f"train distill ({', '.join(labels)})", ", ".join(sources), cfg.groups_per_batch, cfg.max_steps_off_policy, cfg.save_every,
            progress, lambda m: {"kl": m.get("teacher_kl"), "stale": m.get("staleness/mean")},
        )
        done = await run_sampler_loop(run, tc, mixed, start, total_steps, make_completer, step.train, loop, t_start)
        result = DistillResult(run.path, cfg.mode, total_steps, start.step, done.steps_done, done.metrics, done.final_checkpoint)
        result.elapsed = time.monotonic() - t_start
        return result


def _check_finite(step: int, metrics: Mapping[str, Any]) -> None:
    for k, v in metrics.items():
        if k.startswith("optim/") and isinstance(v, float) and not math.isfinite(v):
            raise CookbookError(f"step {step}: training produced a non-finite {k} ({v}); lower the learning rate")


class _OnPolicyStep:
    """One on-policy step once its groups are collected: the teachers' grades,
    advantages, the optimizer step, metrics and transcripts."""

    def __init__(self, cfg: DistillConfig, run: Run, tc: TrainingClient, student: Renderer, scorers: list[TeacherScorer], total_steps: int) -> None:
        self.cfg = cfg
        self.run = run
        self.tc = tc
        self.student = student
        self.scorers = scorers
        self.total_steps = total_steps

    async def train(self, batch: StepBatch) -> tuple[dict[str, Any], float]:
        import numpy as np
        from tinker.types import TensorData

        from cookbook_cli.distill.advantages import kl_advantages
        from cookbook_cli.distill.align import AlignmentError
        from cookbook_cli.rl.data_processing import assemble_training_data, compute_advantages
        from cookbook_cli.rl.metrics import episode_metrics, kl_sample_train
        from cookbook_cli.rl.sampler import train_on_batch

        cfg = self.cfg
        lr = learning_rate_at(batch.step, self.total_steps, cfg.learning_rate or 0.0, cfg.lr_schedule, cfg.warmup_steps)
        metrics: dict[str, Any] = episode_metrics(batch.groups)
        metrics.update(batch.metrics())
        metrics["lr"] = lr
        advantages = [[cfg.env_reward_coef * a for a in advs] for advs in compute_advantages(batch.groups)]
        data, where = assemble_training_data(batch.groups, advantages)
        t0 = time.monotonic()
        teacher_of = [getattr(b, "source", 0) for b in batch.builders]
        scores = await asyncio.gather(
            *(
                self.scorers[teacher_of[w.group]].score(d, batch.builders[w.group], batch.groups[w.group].trajectories[w.trajectory])
                for d, w in zip(data, where, strict=True)
            )
        )
        metrics["time/teacher"] = time.monotonic() - t0
        failed = [s for s in scores if isinstance(s, AlignmentError)]
        if failed:
            metrics["teacher/unaligned"] = len(failed)
            if 2 * len(failed) > len(scores):
                raise CookbookError(
                    f"step {batch.step}: {len(failed)} of {len(scores)} completions could not be aligned for the teacher "
                    f"({failed[0]}); the teacher's renderer cannot grade this student's completions"
                )
        kept = [(d, w, s) for d, w, s in zip(data, where, scores, strict=True) if not isinstance(s, AlignmentError)]
        kl_sum: dict[int, float] = {}
        kl_n: dict[int, float] = {}
        graded = []
        for d, w, teacher_lp in kept:
            student_lp = d.loss_fn_inputs["logprobs"].to_numpy()
            mask = d.loss_fn_inputs["mask"].to_numpy()
            adv = np.asarray(d.loss_fn_inputs["advantages"].to_numpy(), dtype=np.float64)
            adv = adv + kl_advantages(student_lp, teacher_lp, mask, cfg.kl_coef, cfg.kl_discount)
            d.loss_fn_inputs["advantages"] = TensorData(data=adv.astype(np.float32).tolist(), dtype="float32", shape=[len(adv)])
            on = np.asarray(mask) > 0
            t = teacher_of[w.group]
            kl_sum[t] = kl_sum.get(t, 0.0) + float((np.asarray(student_lp)[on] - teacher_lp[on]).sum())
            kl_n[t] = kl_n.get(t, 0.0) + float(on.sum())
            graded.append((d, w, teacher_lp))
        tokens = sum(kl_n.values())
        if tokens:
            metrics["teacher_kl"] = sum(kl_sum.values()) / tokens
            for t, s in sorted(kl_sum.items()):
                if kl_n[t]:
                    metrics[f"teacher_kl/{self.scorers[t].label}"] = s / kl_n[t]
            sampled = np.concatenate([np.asarray(d.loss_fn_inputs["logprobs"].to_numpy())[np.asarray(d.loss_fn_inputs["mask"].to_numpy()) > 0] for d, _, _ in graded])
            metrics["student_entropy"] = float(-sampled.mean())
        data = [d for d, _, _ in graded]
        self._transcript(batch, graded)
        metrics["datums"] = len(data)
        metrics["tokens/action"] = int(tokens)
        metrics["tokens/input"] = sum(d.model_input.length for d in data)
        if not data:
            metrics["no_update"] = True
            return metrics, 0.0
        t1 = time.monotonic()
        train_logprobs, optim_metrics = await train_on_batch(self.tc, data, cfg.loss_fn, cfg.loss_fn_config, cfg.adam.params(lr))
        seconds = time.monotonic() - t1
        metrics.update(optim_metrics)
        if train_logprobs:
            metrics.update(kl_sample_train(data, train_logprobs))
        _check_finite(batch.step, metrics)
        return metrics, seconds

    def _transcript(self, batch: StepBatch, graded: list[tuple[Any, Any, Any]]) -> None:
        import numpy as np

        from cookbook_cli.distill.transcripts import Completion, render_completions
        from cookbook_cli.rl.transcripts import write_transcript

        n = self.cfg.num_groups_to_log
        if n <= 0:
            return
        items = []
        for d, w, teacher_lp in graded:
            if w.group >= n:
                continue
            mask = np.asarray(d.loss_fn_inputs["mask"].to_numpy()) > 0
            targets = np.asarray(d.loss_fn_inputs["target_tokens"].to_numpy()).astype(int)
            first = int(np.flatnonzero(mask)[0])
            prompt = [*d.model_input.to_ints()[:1], *targets[:first].tolist()]
            label = self.scorers[getattr(batch.builders[w.group], "source", 0)].label
            items.append(
                Completion(
                    label, prompt, targets[mask].tolist(), np.asarray(d.loss_fn_inputs["logprobs"].to_numpy())[mask].tolist(),
                    np.asarray(teacher_lp)[mask].tolist(), batch.step - batch.versions[w.group],
                )
            )
        text = render_completions(items, self.student.tokenizer, f"distill: step {batch.step}")
        path = self.run.subdir("transcripts") / f"step_{batch.step:06d}.html"
        write_transcript(path, text)
        self.run.log_html("transcripts", path, batch.step)


# -- off-policy -----------------------------------------------------------------------------------


async def _off_policy(
    cfg: DistillConfig, settings: Any, teachers: list[Teacher], student: Renderer, service: Any, progress: bool | None, on_log: Any
) -> DistillResult:
    from cookbook_cli.distill.prompts import as_prompt
    from cookbook_cli.distill.topk import TopKCache, soft_target_metrics
    from cookbook_cli.engines.losses import forward_backward_with_loss
    from cookbook_cli.rl.loop import save_checkpoint
    from cookbook_cli.run.lifecycle import open_run
    from cookbook_cli.run.progress import StepProgress

    src, teacher = cfg.teachers[0], teachers[0]
    label = teacher_labels(cfg.teachers)[0]
    data, _test = src.prompts.build(student, cfg.batch_size, cfg.max_length, cfg.train_on_what, cfg.seed)
    source = f"dataset {src.prompts.describe()}"
    probe = [p for p in (as_prompt(c) for c in data.conversations[:8]) if p is not None]
    plan = _plan(cfg, 0, teacher, student, probe, source, teacher.tokenizer)
    batches_per_epoch = len(data)
    total = batches_per_epoch * cfg.epochs
    total_steps = total if cfg.max_steps is None else min(cfg.max_steps, total)

    with open_run(settings, service, on_log) as run:
        start = run.start_position(batches_per_epoch, total_steps)
        t_start = time.monotonic()
        tc = await run.training_client_async(cfg.model, cfg.lora_rank, cfg.seed)
        _, (scorer,) = await _scorers(cfg, run, [teacher], [plan], student, [label], [probe], [source])
        cache = TopKCache(run.subdir("teacher_topk"), scorer.client, teacher.identity, cfg.topk)
        result = DistillResult(run.path, cfg.mode, total_steps, start.step, start.step)

        async def prepare(step: int) -> tuple[Any, Any, Any, float]:
            t0 = time.monotonic()
            epoch, index = divmod(step, batches_per_epoch)
            data.set_epoch(epoch)
            batch = data.build_batch(index)
            datums, targets = await cache.datums(batch.datums)
            return batch, datums, targets, time.monotonic() - t0

        ahead: asyncio.Task[Any] | None = None
        plain = None if progress is None else not progress
        try:
            with StepProgress(total_steps, f"train distill off-policy ({label})", start=start.step, plain=plain) as bar:
                for step in range(start.step, total_steps):
                    t0 = time.monotonic()
                    batch, datums, targets, teacher_seconds = await (ahead or asyncio.ensure_future(prepare(step)))
                    # the next batch's teacher outputs are fetched while this one trains
                    ahead = asyncio.ensure_future(prepare(step + 1)) if step + 1 < total_steps else None
                    lr = learning_rate_at(step, total_steps, cfg.learning_rate or 0.0, cfg.lr_schedule, cfg.warmup_steps)
                    metrics: dict[str, Any] = {"lr": lr, **batch.stats.as_metrics("data/")}
                    if not datums:
                        metrics["no_update"] = True
                    else:
                        t1 = time.monotonic()
                        fb = forward_backward_with_loss(tc, datums, "cross_entropy")
                        opt = await tc.optim_step_async(cfg.adam.params(lr))
                        out = await fb
                        optim = await opt
                        metrics["time/train"] = time.monotonic() - t1
                        metrics.update(soft_target_metrics(targets, [o["logprobs"].to_numpy() for o in out.loss_fn_outputs]))
                        for k, v in {**(out.metrics or {}), **(getattr(optim, "metrics", None) or {})}.items():
                            metrics[f"optim/{k}"] = float(v)
                        _check_finite(step, metrics)
                    metrics["time/teacher"] = teacher_seconds
                    metrics["teacher/cache_hits"] = cache.hits
                    metrics["time/step"] = time.monotonic() - t0
                    metrics["elapsed"] = time.monotonic() - t_start
                    run.log_metrics(step, metrics)
                    result.metrics.append({"step": step, **metrics})
                    result.steps_done = step + 1
                    if step + 1 < total_steps and cfg.save_every and (step + 1) % cfg.save_every == 0:
                        await save_checkpoint(run, step + 1, batches_per_epoch, final=False)
                    bar.update(step + 1, kl=metrics.get("teacher_kl"), **{"s/step": metrics["time/step"]})
            if result.steps_done > start.step or run.resume_from is None:
                result.final_checkpoint = await save_checkpoint(run, result.steps_done, batches_per_epoch, final=True)
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)
        result.elapsed = time.monotonic() - t_start
        return result
