"""Where the model of `cookbook sample|chat|eval|export` comes from.

One of:

- a base model (`--model M`, on `--engine E`, default local);
- a run (`--run DIR`): its newest recorded checkpoint, or the one named by
  `--checkpoint` (a record name such as `step-000020`, a step number, or the
  checkpoint's path);
- a checkpoint path alone (`--checkpoint DIR/weights/step-000020`): the run
  that recorded it is found from its parent folders.

The engine, its options, the base model and the renderer come from the run's
config.json (a given `--renderer` wins). A checkpoint with sampler weights is
sampled from them; one with training state only is loaded into a training
client whose current weights are then sampled, so every recorded checkpoint
works, on every engine. Nothing here names an engine. Runs are read through
`run.reader.RunReader`, as resume, DPO references and teachers read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    from cookbook_cli.engines.protocol import SamplingClient, ServiceClient
    from cookbook_cli.renderers.base import Renderer


@dataclass
class ModelSource:
    """A resolved model: what to load, on which engine, and how to render for it."""

    engine: str
    base_model: str
    renderer: str
    engine_options: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    record: dict[str, Any] | None = None  # the checkpoint record, for a run
    config: dict[str, Any] = field(default_factory=dict)  # the run's config.json

    @property
    def checkpoint_name(self) -> str | None:
        return str(self.record.get("name")) if self.record else None

    def describe(self) -> str:
        if self.run_dir is None:
            return f"{self.base_model} (base model, {self.engine} engine)"
        step = self.record.get("step") if self.record else None
        return f"{self.run_dir} checkpoint {self.checkpoint_name} (step {step}, {self.engine} engine)"

    def label(self) -> str:
        """A short name for result folders: the checkpoint's name, or the model's."""
        from cookbook_cli.models import model_label
        from cookbook_cli.run.lifecycle import slug

        if self.record is not None:
            return str(self.record.get("name"))
        return slug(model_label(self.base_model, self.engine), 60)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": self.engine, "base_model": self.base_model, "renderer": self.renderer}
        if self.run_dir is not None:
            out["run"] = str(self.run_dir)
            out["checkpoint"] = self.checkpoint_name
            out["step"] = self.record.get("step") if self.record else None
        return out

    def state_path(self) -> str | None:
        return self._recorded("state_path")

    def sampler_path(self) -> str | None:
        return self._recorded("sampler_path")

    def _recorded(self, key: str) -> str | None:
        from cookbook_cli.run.reader import RunReader

        if self.record is None or self.run_dir is None:
            return None
        return RunReader(self.run_dir).path_of(self.record, key)


# -- resolving -------------------------------------------------------------------------------


def resolve_source(
    model: str | None = None,
    run: str | Path | None = None,
    checkpoint: str | None = None,
    engine: str | None = None,
    renderer: str | None = None,
    engine_options: dict[str, Any] | None = None,
) -> ModelSource:
    """The model a command uses: a base model, or a run's checkpoint (see the module docstring)."""
    from cookbook_cli import models
    from cookbook_cli.plugins import registry
    from cookbook_cli.run.reader import RunReader, run_containing

    if renderer is not None:
        registry.renderers.get(renderer)  # unknown names: suggestions
    reader = RunReader.open(run) if run is not None else None
    if checkpoint is not None and "://" not in checkpoint and Path(checkpoint).expanduser().exists():
        owner = run_containing(Path(checkpoint).expanduser().resolve())
        if owner is None:
            raise CookbookError(
                f"checkpoint {checkpoint!r} lies in no cookbook run, so its base model and renderer are unknown; "
                "give a checkpoint inside a run directory"
            )
        if reader is not None and owner.resolve() != reader.path.resolve():
            other, mine = RunReader(owner).base_model(), reader.base_model()
            if other != mine:
                raise CookbookError(
                    f"checkpoint {checkpoint!r} belongs to run {str(owner)!r} (base model {other!r}), "
                    f"not to --run {str(reader.path)!r} (base model {mine!r}); drop --run or give a checkpoint of that run"
                )
            raise CookbookError(f"checkpoint {checkpoint!r} belongs to run {str(owner)!r}, not to --run {str(reader.path)!r}; drop --run")
        reader = RunReader(owner)
    if reader is None:
        if checkpoint is not None:
            raise CookbookError(f"checkpoint {checkpoint!r} is not a folder here; with a checkpoint name or step, also give --run DIR")
        if model is None:
            raise CookbookError("give a model to use: --model NAME (a base model), --run DIR (a run's newest checkpoint) or --checkpoint PATH")
        engine = engine or "local"
        base, chosen_renderer = models.resolve_model_and_renderer(engine, model, renderer)
        return ModelSource(engine, base, chosen_renderer, dict(engine_options or {}))

    run_dir = reader.path
    config = reader.config()
    if model is not None and model != config["model"]:
        raise CookbookError(
            f"run {str(run_dir)!r} trained base model {config['model']!r}, not --model {model!r}: "
            "its checkpoints only fit their own base model; drop --model"
        )
    if engine is not None and engine != config["engine"]:
        raise CookbookError(f"run {str(run_dir)!r} trained on engine {config['engine']!r}, not --engine {engine!r}; drop --engine")
    record = reader.checkpoint(checkpoint)
    options = {**dict(config.get("engine_options") or {}), **dict(engine_options or {})}
    chosen = renderer or config.get("renderer")
    if not isinstance(chosen, str):
        chosen = models.resolve_model_and_renderer(config["engine"], config["model"], None)[1]
    return ModelSource(config["engine"], config["model"], chosen, options, run_dir, record, config)


# -- opening -----------------------------------------------------------------------------------


def create_service(source: ModelSource) -> ServiceClient:
    """The engine's ServiceClient for `source` (for a run: the one its recipe used)."""
    from cookbook_cli.engines import create_service_client, create_service_for_run

    if source.run_dir is not None:
        return create_service_for_run(source.engine, source.run_dir, dict(source.engine_options))
    return create_service_client(source.engine, **source.engine_options)


def sampling_client_for(service: ServiceClient, source: ModelSource) -> SamplingClient:
    """A sampling client over `source`'s weights: its sampler weights, or its
    training state loaded into a training client and snapshot for sampling."""
    if source.run_dir is None:
        return service.create_sampling_client(base_model=source.base_model)
    sampler = source.sampler_path()
    if sampler is not None:
        return service.create_sampling_client(model_path=sampler)
    state = source.state_path()
    if state is None:
        raise CookbookError(f"checkpoint {source.checkpoint_name!r} of {source.run_dir} has no state_path")
    return service.create_training_client_from_state(state).save_weights_and_get_sampling_client()


def renderer_for(source: ModelSource) -> Renderer:
    from cookbook_cli.models import tokenizer_for_model
    from cookbook_cli.renderers import get_renderer

    return get_renderer(source.renderer, tokenizer_for_model(source.base_model, source.engine))


@contextmanager
def open_sampler(source: ModelSource) -> Iterator[SamplingClient]:
    """A sampling client over `source`; the engine service is closed afterwards."""
    service = create_service(source)
    try:
        try:
            client = sampling_client_for(service, source)
        except CookbookError as e:
            raise CookbookError(f"cannot load {source.describe()}: {e}") from None
        yield client
    finally:
        if callable(getattr(service, "close", None)):
            service.close()
