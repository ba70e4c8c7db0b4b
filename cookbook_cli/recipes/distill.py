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
the K) is the soft target of a `cross_entropy` over (N, K) targets, in the
epoch loop (`recipes/epoch_loop.py`, as `train sl`). The teacher's top-K are
cached in the run (`teacher_topk/`).

Everything else is the shared run lifecycle: validate before writing,
checkpoints every `save_every` steps, resume with `--if-exists resume`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chz

from cookbook_cli.config import SUPERVISED_FILES, RegistryFactory, config_to_json, registry_name_of
from cookbook_cli.data.builders import ConversationsBuilder, SupervisedDatasetBuilder
from cookbook_cli.errors import CookbookError
from cookbook_cli.recipes.contract import Option, Recipe, prepare_run, run_settings
from cookbook_cli.recipes.sampler_loop import SamplerConfig, check_finite, evaluation
from cookbook_cli.run.config import EpochConfig, RunConfig, at_least, check_epoch_fields
from cookbook_cli.run.options import RunOptions
from cookbook_cli.plugins import registry
from cookbook_cli.rl.arithmetic import ArithmeticBuilder
from cookbook_cli.rl.types import RLDatasetBuilder
from cookbook_cli.types import TrainOnWhat

if TYPE_CHECKING:
    from cookbook_cli.distill.scoring import TeacherScorer
    from cookbook_cli.distill.teachers import Teacher
    from cookbook_cli.engines.protocol import SamplingClient, TrainingClient
    from cookbook_cli.renderers.base import Renderer
    from cookbook_cli.rl.sampler import StepBatch
    from cookbook_cli.run.lifecycle import Run

DEFAULT_MAX_TOKENS = 64  # prompts' completions; an env brings its own
MODES = ("on_policy", "off_policy")


@chz.chz
class TeacherSource:
    """One teacher and the prompts (or env) it grades."""

    model: str = chz.field(doc="the teacher: a model (Hub id, folder, random:...), a runs/... directory of a finished run, or a tinker:// path")
    renderer: str | None = chz.field(default=None, doc="the teacher's chat format; default: its run's, else the student's")
    prompts: SupervisedDatasetBuilder | None = chz.field(
        default=None,
        meta_factory=RegistryFactory(
            registry.dataset_builders, ConversationsBuilder, kinds=("prompt", "supervised"), used_by="`train distill`", files=SUPERVISED_FILES
        ),
        doc="prompt_file (prompts.path=FILE), or a supervised dataset whose last assistant turns are dropped; default: the bundled sample",
    )
    split: str = chz.field(default="train", doc="the prompts' split: train, or test (the rows the dataset holds out)")
    env: RLDatasetBuilder | None = chz.field(
        default=None,
        meta_factory=RegistryFactory(registry.envs, ArithmeticBuilder),
        doc="an RL env instead of prompts (cookbook envs list); its fields are env.<field>",
    )
    weight: float = chz.field(default=1.0, doc="this teacher's share of each batch")

    @chz.validate
    def _one_source(self) -> None:
        if self.prompts is not None and self.env is not None:
            raise CookbookError(f"teacher {self.model!r}: prompts and env both name its prompts; give one")

    def with_default_prompts(self) -> TeacherSource:
        """The bundled sample as prompts when neither prompts nor an env is given."""
        return chz.replace(self, prompts=ConversationsBuilder()) if self.prompts is None and self.env is None else self


@chz.chz
class DistillConfig(SamplerConfig, EpochConfig):
    """Distillation from one or more teachers, on-policy (the sampler fields:
    `SamplerConfig`) or off-policy (the epoch fields: `EpochConfig`)."""

    teachers: list[TeacherSource] = chz.field(default_factory=list, doc="the teachers: teachers.N.model=..., teachers.N.prompts=..., teachers.N.weight=...")
    mode: str | None = chz.field(
        default=None,
        doc="on_policy (reverse KL on the student's samples) or off_policy (top-K soft targets); default on_policy, "
        "off_policy for a student trained from scratch (random weights) and one teacher with a dataset, as its own samples teach it little",
        metadata={"choices": MODES},
    )
    kl_coef: float = chz.field(default=1.0, doc="kappa: advantage = -kappa * (student logprob - teacher logprob)")
    kl_discount: float = chz.field(default=0.0, doc="gamma: discounted future sum of the per-token advantages (0: none)")
    env_reward_coef: float = chz.field(default=0.0, doc="on-policy with an env: add this times the env's reward advantage")
    topk: int = chz.field(default=20, doc="off-policy: the teacher's K most likely next tokens per position")
    train_on_what: str = chz.field(
        default="all_assistant_messages", doc="off-policy: which tokens are trained", metadata={"choices": tuple(m.value for m in TrainOnWhat)}
    )

    RESUME_MAY_CHANGE = tuple(dict.fromkeys((*SamplerConfig.RESUME_MAY_CHANGE, *EpochConfig.RESUME_MAY_CHANGE)))
    MORE_STEPS_OPTION = "--epochs"

    @chz.validate
    def _check(self) -> None:
        check_epoch_fields(self)  # the second base's checks (chz runs the first base's)
        TrainOnWhat.parse(self.train_on_what)
        if self.mode is not None and self.mode not in MODES:
            from cookbook_cli.errors import UnknownNameError

            raise UnknownNameError("distillation mode", self.mode, MODES)
        at_least(self, 1, "topk")
        for name in ("kl_coef", "env_reward_coef"):
            if getattr(self, name) < 0:
                raise CookbookError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.kl_discount < 1:
            raise CookbookError(f"kl_discount must be in [0, 1), got {self.kl_discount}")
        if self.env_reward_coef > 0 and self.group_size == 1:
            raise CookbookError("env_reward_coef > 0 with group_size=1 adds nothing (rewards are centred within a group); use --group-size 2 or more")

    def data_label(self) -> str:
        return teacher_labels(self.teachers)[0] if self.teachers else ""

    def trains_on_policy(self) -> bool:
        return self.mode != "off_policy"  # unset is on-policy for a pretrained student (see default_mode)

    def to_json(self) -> dict[str, Any]:
        """The config, each teacher's prompts and env recorded by registry name."""
        return {**super().to_json(), "teachers": [config_to_json(t, {"prompts": registry.dataset_builders, "env": registry.envs}) for t in self.teachers]}

    def suggested(self, engine: str) -> dict[str, Any]:
        """With neither --model nor --renderer and a teacher that is a run, the
        student is a fresh copy of the teacher run's base model with its renderer."""
        first = _resolve_teachers(self, engine)[0]
        if first.model_path is not None and first.base_model is not None:
            return {"model": first.base_model, "renderer": first.renderer}
        return {}

    def resolve_more(self, resolved: RunConfig) -> dict[str, Any]:
        super().resolve_more(resolved)
        teachers = [t.with_default_prompts() for t in self.teachers]
        assert resolved.model is not None and resolved.engine is not None
        mode = self.mode or default_mode(teachers, resolved.model, resolved.engine)
        if self.max_tokens is not None:
            return {"teachers": teachers, "mode": mode}
        envs = [t.env for t in self.teachers if t.env is not None]
        max_tokens = max([int(e.default_max_tokens) for e in envs] + ([DEFAULT_MAX_TOKENS] if len(envs) < len(self.teachers) else []))
        return {"teachers": teachers, "mode": mode, "max_tokens": max_tokens}


def default_mode(teachers: Sequence[TeacherSource], student: str, engine: str) -> str:
    """on_policy, except for a student trained from scratch: its samples are near-uniform over the
    vocabulary, so the teacher's grades of them barely move it (teacher KL 3.55 -> 3.53 in 8 steps
    on the demo), while the teacher's top-K targets teach it at once (9.07 -> 0.06 in 10 steps)."""
    from cookbook_cli import models
    from cookbook_cli.distill.prompts import PromptFileBuilder

    spec = models.model_spec(student, engine)
    scratch = spec is not None and spec.from_scratch
    [first, *others] = teachers
    # Off-policy trains on conversations with replies: not an env's problems or a file of prompts.
    supervised = not others and first.env is None and not isinstance(first.prompts, PromptFileBuilder)
    return "off_policy" if scratch and supervised else "on_policy"


# -- resolving ------------------------------------------------------------------------------------


def teacher_labels(teachers: Sequence[TeacherSource]) -> list[str]:
    """Short, distinct names of the teachers for metrics (`teacher_kl/<label>`)."""
    from cookbook_cli.run.lifecycle import slug

    labels: list[str] = []
    for i, t in enumerate(teachers):
        label = slug(t.model.rstrip("/").replace(":", "-"), 24)
        labels.append(label if label not in labels else f"{label}-{i}")
    return labels


def _resolve_teachers(config: DistillConfig, engine: str) -> list[Teacher]:
    from cookbook_cli.distill.teachers import resolve_teacher

    if not config.teachers:
        raise CookbookError("no teacher: pass --teacher (a model, a runs/... directory of a finished run, or a tinker:// path)")
    if config.mode == "off_policy":
        if len(config.teachers) > 1:
            raise CookbookError(f"off-policy distillation takes one teacher, got {len(config.teachers)}")
        if config.teachers[0].env is not None:
            raise CookbookError("off-policy distillation trains on a supervised dataset (--dataset), not an env")
    return [resolve_teacher(t.model, engine) for t in config.teachers]


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


def train(config: DistillConfig, options: RunOptions | None = None) -> DistillResult:
    """Run distillation as configured: the library entry point of `cookbook train distill`."""
    args = _prepare(config, options)
    # off-policy runs the (synchronous) epoch loop in this thread, where Ctrl-C arrives
    return asyncio.run(_on_policy(*args)) if args[0].mode == "on_policy" else _off_policy(*args)


async def train_async(config: DistillConfig, options: RunOptions | None = None) -> DistillResult:
    """`train` from async code."""
    args = _prepare(config, options)
    return await (_on_policy(*args) if args[0].mode == "on_policy" else asyncio.to_thread(_off_policy, *args))


def _prepare(config: DistillConfig, options: RunOptions | None) -> tuple[DistillConfig, Any, list[Teacher], Renderer, RunOptions]:
    """The resolved config, the run's settings, the teachers and the student's renderer."""
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.renderers import get_renderer
    from cookbook_cli.tokenizers import get_tokenizer

    cfg, options = prepare_run("distill", config, options)
    assert cfg.log_dir is not None and cfg.model is not None and cfg.renderer is not None and cfg.engine is not None
    teachers = _resolve_teachers(cfg, cfg.engine)
    tokenizer = get_tokenizer(tokenizer_for_model(cfg.model, cfg.engine))
    student = get_renderer(cfg.renderer, tokenizer)
    return cfg, run_settings("distill", cfg, options), teachers, student, options


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


async def _on_policy(cfg: DistillConfig, settings: Any, teachers: list[Teacher], student: Renderer, options: RunOptions) -> DistillResult:
    from cookbook_cli.distill.mixing import MixedDataset, group_counts
    from cookbook_cli.distill.prompts import PromptDataset, load_prompts
    from cookbook_cli.completers import SamplingClientCompleter
    from cookbook_cli.recipes.sampler_loop import LoopSettings, run_sampler_loop
    from cookbook_cli.evaluation.in_training import prepare_evaluators
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
            assert src.prompts is not None  # resolved: the bundled sample by default
            prompts = load_prompts(src.prompts, cfg.seed, src.split)
            source = f"prompts {src.prompts.describe()}"
            dataset = PromptDataset(prompts, student, cfg.group_size, counts[i], cfg.epochs, cfg.seed, name=source)
            probe = prompts[:8]
        datasets.append(dataset)
        sources.append(source)
        probes.append(probe)
        plans.append(_plan(cfg, i, teacher, student, probe, source, teacher.tokenizer))
    mixed = MixedDataset(datasets, labels)
    total_steps = cfg.total_steps(len(mixed), options.say)
    evaluators = prepare_evaluators(cfg.evaluators, student)

    with open_run(settings) as run:
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
            options.progress, lambda m: {"kl": m.get("teacher_kl"), "stale": m.get("staleness/mean")},
            evaluation(cfg, evaluators, student, tc),
        )
        done = await run_sampler_loop(run, tc, mixed, start, total_steps, make_completer, step.train, loop, t_start)
        result = DistillResult(run.path, cfg.mode, total_steps, start.step, done.steps_done, done.metrics, done.final_checkpoint)
        result.elapsed = time.monotonic() - t_start
        return result


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
        lr = cfg.learning_rate_at(batch.step, self.total_steps)
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
        check_finite(batch.step, metrics)
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


def _off_policy(cfg: DistillConfig, settings: Any, teachers: list[Teacher], student: Renderer, options: RunOptions) -> DistillResult:
    """Off-policy distillation on the epoch loop: each batch's teacher top-K is
    fetched as the batch is built (with `pipeline`, while the previous step
    trains), then the step trains the soft targets with `cross_entropy`."""
    from cookbook_cli.distill.prompts import as_prompt
    from cookbook_cli.distill.topk import TopKCache, soft_target_metrics
    from cookbook_cli.recipes.epoch_loop import EpochSteps, run_epoch_loop
    from cookbook_cli.rl.sampler import batch_results

    src, teacher = cfg.teachers[0], teachers[0]
    label = teacher_labels(cfg.teachers)[0]
    assert src.prompts is not None  # resolved: the bundled sample by default
    data, _test = src.prompts.build(student, cfg.batch_size, cfg.max_length, cfg.train_on_what, cfg.seed)
    source = f"dataset {src.prompts.describe()}"
    probe = [p for p in (as_prompt(c) for c in data.conversations[:8]) if p is not None]
    plan = _plan(cfg, 0, teacher, student, probe, source, teacher.tokenizer)
    total_steps = cfg.epoch_steps(len(data), options.say)

    # The teacher's client and the top-K cache are async; one event loop serves them for the whole run.
    with asyncio.Runner() as aio:
        batches = _TopKBatches(data, aio)

        def start(run: Run, client: TrainingClient, position: Any) -> None:
            _, (scorer,) = aio.run(_scorers(cfg, run, [teacher], [plan], student, [label], [probe], [source]))
            batches.cache = TopKCache(run.subdir("teacher_topk"), scorer.client, teacher.identity, cfg.topk)

        def step(client: TrainingClient, batch: _TopKBatch, lr: float) -> Callable[[], dict[str, Any]]:
            if not batch.datums:
                return lambda: {**batch.metrics, "no_update": True}
            t0 = time.monotonic()
            fb = client.forward_backward(batch.datums, "cross_entropy")
            opt = client.optim_step(cfg.adam.params(lr))

            def done() -> dict[str, Any]:
                logprobs, optim = batch_results(fb.result(), opt.result(), len(batch.datums))
                metrics = {**batch.metrics, "time/train": time.monotonic() - t0, **soft_target_metrics(batch.targets, logprobs), **optim}
                check_finite(batch.step, metrics)
                return metrics

            return done

        steps = EpochSteps(
            step, start=start, pipeline=True, title=f"train distill off-policy ({label})",
            bar_fields=lambda row: {"kl": row.get("teacher_kl"), "s/step": row.get("step_time")},
            nothing_trained="every example was skipped: no trained token within max_length; raise --max-length or check which messages train_on_what selects",
        )
        done = run_epoch_loop(settings, cfg, batches, total_steps, steps, student)
    final = [{"step": total_steps, **done.final_eval, "final": True}] if done.final_eval else []
    return DistillResult(done.log_dir, cfg.mode, total_steps, done.start_step, total_steps, [*done.metrics, *final], done.final_checkpoint, done.elapsed)


@dataclass
class _TopKBatch:
    step: int
    datums: list[Any]  # soft-target datums
    targets: list[Any]  # their `SoftTargets`, for the metrics
    metrics: dict[str, Any]  # the batch's data stats and teacher timing


class _TopKBatches:
    """The supervised dataset's batches with the teacher's top-K as targets
    (`EpochData` for the epoch loop); the cache is set once the run exists."""

    def __init__(self, data: Any, aio: asyncio.Runner) -> None:
        self.data = data
        self.aio = aio
        self.cache: Any = None
        self.epoch_seed: int | None = None

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.data.set_epoch(epoch)
        self.epoch_seed = epoch

    def build_batch(self, index: int) -> _TopKBatch:
        assert self.cache is not None and self.epoch_seed is not None
        t0 = time.monotonic()
        batch = self.data.build_batch(index)
        datums, targets = self.aio.run(self.cache.datums(batch.datums))
        metrics = {**batch.stats.as_metrics("data/"), "time/teacher": time.monotonic() - t0, "teacher/cache_hits": self.cache.hits}
        return _TopKBatch(self.epoch_seed * len(self.data) + index, datums, targets, metrics)


def summary(config: DistillConfig, result: DistillResult) -> list[str]:
    """What `cookbook train distill` prints after the run."""
    from cookbook_cli.recipes.report import change, done_line

    how = "off-policy" if result.mode == "off_policy" else (
        "on-policy, synchronous" if config.max_steps_off_policy == 0 else f"on-policy, asynchronous, <= {config.max_steps_off_policy} steps off-policy"
    )
    kl = result.series("teacher_kl")
    lines = [done_line(result.steps_done - result.start_step, result.elapsed, how=how)]
    if kl:
        lines.append(f"  teacher KL  {change(kl[0], kl[-1])}")
    return lines


#: Config words of the first teacher that may be written without `teachers.0.`.
FIRST_TEACHER_WORDS = {w: f"teachers.0.{w}" for w in ("env", "prompts", "split", "weight")}

RECIPE = Recipe(
    DistillConfig,
    train,
    summary,
    options=(
        Option(("--teacher", "-t"), "teachers.0.model",
               "The teacher: a model (Hub id, folder, random:...), a runs/... directory of a finished run (e.g. a train sl run), or a tinker:// path."),
        Option(("--teacher-renderer",), "teachers.0.renderer",
               "The teacher's chat format when it differs from the student's: completions are re-rendered for it."),
        Option(("--prompts", "-p"), "teachers.0.prompts", "A JSONL of conversations ending in a user turn; `sample`: the prompts shipped with cookbook.", file_builder="prompt_file", group="prompts"),
        Option(("--dataset", "-d"), "teachers.0.prompts",
               "A supervised dataset (name or .jsonl): on-policy, its conversations without their last assistant turn are the prompts; "
               "off-policy, its examples are trained. Default: the bundled sample.", group="prompts"),
        Option(("--env",), "teachers.0.env", "An RL environment to take prompts from (cookbook envs list); options as env.<field>=value.", group="prompts"),
    ),
    aliases={"loss_fn": ("--loss",)},
    words=FIRST_TEACHER_WORDS,
)
