"""The local engine's TrainingClient.

Each public call checks its arguments at once (so a bad name or config fails
where it was written) and queues the model work on the service's worker;
gradients accumulate across forward_backward calls until optim_step, as on
Tinker. The optimizer is torch's AdamW, which is what Tinker's Adam is.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cookbook_cli.engines.futures import LocalFuture
from cookbook_cli.engines.local import checkpoints
from cookbook_cli.engines.local import passes
from cookbook_cli.engines.local.batch import Example, examples, plan, to_host
from cookbook_cli.engines.losses import BuiltinLoss, get_builtin_loss
from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import torch
    from tinker import types

    from cookbook_cli.engines.local.models import LoadedModel
    from cookbook_cli.engines.local.packing import MicroBatch
    from cookbook_cli.engines.local.sampling import LocalSamplingClient
    from cookbook_cli.engines.local.service import LocalServiceClient
    from cookbook_cli.engines.protocol import CustomLossFn
    from cookbook_cli.tokenizers import Tokenizer


@dataclass(frozen=True)
class TrainingSetup:
    """What a training client trains; checkpoints record it and must match it."""

    base_model: str
    lora_rank: int
    seed: int = 0
    train_mlp: bool = True
    train_attn: bool = True
    train_unembed: bool = True

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> TrainingSetup:
        try:
            return cls(**{k: meta[k] for k in ("base_model", "lora_rank", "seed", "train_mlp", "train_attn", "train_unembed")})
        except KeyError as e:
            raise CookbookError(f"checkpoint metadata lacks {e.args[0]!r}") from None

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("seed")  # the seed only picks the starting adapter; loaded weights replace it
        return d


def _describe(d: Mapping[str, Any]) -> str:
    kind = f"LoRA rank {d.get('lora_rank')}" if d.get("lora_rank") else "full fine-tuning"
    return f"{d.get('base_model')!r} ({kind})"


def _tensor_data(array: Any) -> types.TensorData:
    from tinker import types

    return types.TensorData.from_numpy(array)


class LocalTrainingClient:
    def __init__(self, service: LocalServiceClient, setup: TrainingSetup, loaded: LoadedModel) -> None:
        self._service = service
        self._setup = setup
        self._loaded = loaded
        self._model_id = f"local-{uuid.uuid4().hex[:12]}"
        self._named = {n: p for n, p in loaded.model.named_parameters() if p.requires_grad}
        self._optimizer = self._new_optimizer()
        self._steps = 0

    @classmethod
    def create(cls, service: LocalServiceClient, setup: TrainingSetup) -> LocalTrainingClient:
        """Load the base model and make it trainable (runs on the worker)."""
        from cookbook_cli.engines.local.lora import apply_lora
        from cookbook_cli.engines.local.models import load_base_model

        full = setup.lora_rank == 0
        weights = service.precision.base_weight_dtype(full)
        loaded = load_base_model(setup.base_model, weights, service.cache_dir, service.precision.attention(weights))
        loaded.model.requires_grad_(full)
        if not full:
            loaded.model = apply_lora(
                loaded.model, setup.lora_rank, setup.seed, setup.train_attn, setup.train_mlp, setup.train_unembed
            )
        loaded.model.to(service.precision.device)
        loaded.model.eval()
        return cls(service, setup, loaded)

    def _new_optimizer(self) -> torch.optim.Optimizer:
        import torch

        # fused: one pass per tensor instead of foreach's several (on the CPU a
        # quarter of the time: a fifth of a full fine-tuning step of SmolLM2).
        # Hyperparameters are set from AdamParams at every optim_step.
        return torch.optim.AdamW(list(self._named.values()), lr=0.0, betas=(0.9, 0.95), eps=1e-12, weight_decay=0.0, fused=True)

    # -- introspection -----------------------------------------------------------
    @property
    def model(self) -> Any:
        """The torch module being trained (a peft model under LoRA)."""
        return self._loaded.model

    def trainable_parameters(self) -> dict[str, torch.Tensor]:
        """Name -> parameter of everything this client trains."""
        return dict(self._named)

    def get_tokenizer(self) -> Tokenizer:
        return self._loaded.tokenizer

    def get_base_model(self) -> str:
        return self._setup.base_model

    def get_info(self) -> types.GetInfoResponse:
        from tinker import types

        rank = self._setup.lora_rank
        return types.GetInfoResponse(
            model_data=types.ModelData(
                arch=type(self._loaded.model).__name__,
                model_name=self._setup.base_model,
                tokenizer_id=self._loaded.tokenizer.source,
            ),
            model_id=self._model_id,
            is_lora=rank > 0,
            lora_rank=rank or None,
            model_name=self._setup.base_model,
        )

    # -- forward / backward -------------------------------------------------------
    def _layout(self, data: Sequence[types.Datum], keys: Sequence[str], required: Sequence[str]) -> tuple[list[Example], list[MicroBatch]]:
        batch = examples(data, keys, required, self._loaded.vocab_size)
        svc = self._service
        return batch, plan(self.model, batch, svc.packing, svc.max_tokens_for(self._loaded.vocab_size))

    def _run_builtin(self, data: Sequence[types.Datum], loss: BuiltinLoss, cfg: dict[str, float], backward: bool) -> types.ForwardBackwardOutput:
        from tinker import types

        batch, layout = self._layout(data, (*loss.required_inputs, *loss.optional_inputs), loss.required_inputs)
        lps, els, total = passes.builtin(self.model, self._service.precision, batch, layout, loss, cfg, backward)
        outputs = [
            {"logprobs": _tensor_data(lp_i), "elementwise_loss": _tensor_data(el_i)}
            for lp_i, el_i in zip(to_host(lps, batch), to_host(els, batch), strict=True)
        ]
        return types.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord", loss_fn_outputs=outputs, metrics={"loss:sum": total})

    def _builtin(self, loss_fn: str, loss_fn_config: Mapping[str, Any] | None) -> tuple[BuiltinLoss, dict[str, float]]:
        loss = get_builtin_loss(loss_fn)
        return loss, loss.resolve_config(loss_fn_config)

    def forward(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Mapping[str, Any] | None = None
    ) -> LocalFuture[types.ForwardBackwardOutput]:
        loss, cfg = self._builtin(loss_fn, loss_fn_config)
        return self._service.submit(self._run_builtin, list(data), loss, cfg, False)

    async def forward_async(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Mapping[str, Any] | None = None
    ) -> LocalFuture[types.ForwardBackwardOutput]:
        return self.forward(data, loss_fn, loss_fn_config)

    def forward_backward(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Mapping[str, Any] | None = None
    ) -> LocalFuture[types.ForwardBackwardOutput]:
        loss, cfg = self._builtin(loss_fn, loss_fn_config)
        return self._service.submit(self._run_builtin, list(data), loss, cfg, True)

    async def forward_backward_async(
        self, data: Sequence[types.Datum], loss_fn: str, loss_fn_config: Mapping[str, Any] | None = None
    ) -> LocalFuture[types.ForwardBackwardOutput]:
        return self.forward_backward(data, loss_fn, loss_fn_config)

    def _run_custom(self, data: list[types.Datum], fn: CustomLossFn) -> types.ForwardBackwardOutput:
        from tinker import types

        batch, layout = self._layout(data, (), ())
        lps, loss, metrics = passes.custom(self.model, self._service.precision, batch, layout, data, fn)
        out_metrics = {k: float(v) for k, v in dict(metrics or {}).items()}
        out_metrics["loss:sum"] = float(loss.detach().sum())
        return types.ForwardBackwardOutput(
            loss_fn_output_type="ArrayRecord",
            loss_fn_outputs=[{"logprobs": _tensor_data(a)} for a in to_host(lps, batch)],
            metrics=out_metrics,
        )

    def forward_backward_custom(self, data: Sequence[types.Datum], loss_fn: CustomLossFn) -> LocalFuture[types.ForwardBackwardOutput]:
        if not callable(loss_fn):
            raise CookbookError(f"forward_backward_custom needs a function (data, logprobs_list) -> (loss, metrics), got {loss_fn!r}")
        return self._service.submit(self._run_custom, list(data), loss_fn)

    async def forward_backward_custom_async(
        self, data: Sequence[types.Datum], loss_fn: CustomLossFn
    ) -> LocalFuture[types.ForwardBackwardOutput]:
        return self.forward_backward_custom(data, loss_fn)

    # -- optimizer ------------------------------------------------------------------
    def _run_optim(self, params: types.AdamParams) -> types.OptimStepResponse:
        import torch
        from tinker import types

        tensors = list(self._named.values())
        grads = [p.grad for p in tensors if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        if params.grad_clip_norm > 0 and grads:
            torch.nn.utils.clip_grads_with_norm_(tensors, params.grad_clip_norm, norm)
        for group in self._optimizer.param_groups:
            group.update(
                lr=params.learning_rate,
                betas=(params.beta1, params.beta2),
                eps=params.eps,
                weight_decay=params.weight_decay,
            )
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)
        self._steps += 1
        return types.OptimStepResponse(metrics={"grad_norm": float(norm), "learning_rate": params.learning_rate})

    def optim_step(self, adam_params: types.AdamParams) -> LocalFuture[types.OptimStepResponse]:
        from tinker import types

        if not isinstance(adam_params, types.AdamParams):
            raise CookbookError(f"optim_step takes tinker.types.AdamParams, got {type(adam_params).__name__}")
        if adam_params.learning_rate < 0 or not (0 <= adam_params.beta1 < 1 and 0 <= adam_params.beta2 < 1):
            raise CookbookError(f"invalid AdamParams: {adam_params}")
        return self._service.submit(self._run_optim, adam_params)

    async def optim_step_async(self, adam_params: types.AdamParams) -> LocalFuture[types.OptimStepResponse]:
        return self.optim_step(adam_params)

    # -- checkpoints ------------------------------------------------------------------
    def _meta(self, kind: str, with_optimizer: bool = False) -> dict[str, Any]:
        return {"kind": kind, **asdict(self._setup), "optimizer_steps": self._steps, "has_optimizer": with_optimizer}

    def _run_save_state(self, folder: Path, overwrite: bool) -> types.SaveWeightsResponse:
        from tinker import types

        opt_tensors: dict[str, Any] = {}
        for name, p in self._named.items():
            state = self._optimizer.state.get(p)
            if state:
                opt_tensors[f"{name}::exp_avg"] = state["exp_avg"]
                opt_tensors[f"{name}::exp_avg_sq"] = state["exp_avg_sq"]
                opt_tensors[f"{name}::step"] = state["step"].reshape(1).float()
        with checkpoints.writing(folder, overwrite) as tmp:
            checkpoints.save_tensors(tmp / checkpoints.WEIGHTS, dict(self._named))
            checkpoints.save_tensors(tmp / checkpoints.OPTIMIZER, opt_tensors)
            checkpoints.write_meta(tmp, self._meta("state", with_optimizer=True))
        return types.SaveWeightsResponse(path=str(folder))

    def save_state(self, name: str, overwrite: bool = False) -> LocalFuture[types.SaveWeightsResponse]:
        folder = checkpoints.checkpoint_dir(self._service.checkpoint_dir, checkpoints.STATE_KIND, name)
        return self._service.submit(self._run_save_state, folder, overwrite)

    async def save_state_async(self, name: str, overwrite: bool = False) -> LocalFuture[types.SaveWeightsResponse]:
        return self.save_state(name, overwrite)

    def _load(self, folder: Path, with_optimizer: bool) -> types.LoadWeightsResponse:
        import torch
        from tinker import types

        meta = checkpoints.read_meta(folder)
        if meta.get("kind") != "state":
            raise CookbookError(f"{str(folder)!r} holds sampler weights, not training state; load a save_state path")
        checkpoints.check_compatible(meta, self._setup.identity(), _describe)
        device = self._service.precision.device
        weights = checkpoints.load_tensors(folder / checkpoints.WEIGHTS, device)
        if set(weights) != set(self._named):
            raise CookbookError(f"checkpoint {str(folder)!r} holds different parameters than this client trains")
        with torch.no_grad():
            for name, p in self._named.items():
                p.copy_(weights[name])
                p.grad = None
        self._optimizer = self._new_optimizer()
        self._steps = int(meta.get("optimizer_steps", 0))
        if with_optimizer:
            if not meta.get("has_optimizer"):
                raise CookbookError(f"checkpoint {str(folder)!r} has no optimizer state")
            opt = checkpoints.load_tensors(folder / checkpoints.OPTIMIZER, "cpu")
            state_dict = self._optimizer.state_dict()
            state_dict["state"] = {
                i: {
                    "step": opt[f"{name}::step"].reshape(()),
                    "exp_avg": opt[f"{name}::exp_avg"],
                    "exp_avg_sq": opt[f"{name}::exp_avg_sq"],
                }
                for i, name in enumerate(self._named)
                if f"{name}::step" in opt
            }
            # load_state_dict places each tensor where this optimizer keeps it.
            self._optimizer.load_state_dict(state_dict)
        return types.LoadWeightsResponse(path=str(folder), model_id=self._model_id)

    def _resolve_state(self, path: str) -> Path:
        return checkpoints.resolve(self._service.checkpoint_dir, path, checkpoints.STATE_KIND)

    def load_state(self, path: str) -> LocalFuture[types.LoadWeightsResponse]:
        return self._service.submit(self._load, self._resolve_state(path), False)

    async def load_state_async(self, path: str) -> LocalFuture[types.LoadWeightsResponse]:
        return self.load_state(path)

    def load_state_with_optimizer(self, path: str) -> LocalFuture[types.LoadWeightsResponse]:
        return self._service.submit(self._load, self._resolve_state(path), True)

    async def load_state_with_optimizer_async(self, path: str) -> LocalFuture[types.LoadWeightsResponse]:
        return self.load_state_with_optimizer(path)

    # -- sampling -----------------------------------------------------------------------
    def _run_save_sampler(self, folder: Path, overwrite: bool) -> types.SaveWeightsForSamplerResponse:
        from tinker import types

        tok = self._loaded.tokenizer
        with checkpoints.writing(folder, overwrite) as tmp:
            # A peft adapter folder under LoRA, a Hugging Face model folder otherwise:
            # both load with the usual libraries, and as base_model for this engine.
            from cookbook_cli.engines.local.quiet import no_hf_progress_bars

            with no_hf_progress_bars(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
                if self._setup.lora_rank:
                    # The base is frozen: the adapter alone, never a copy of the embeddings.
                    self.model.save_pretrained(str(tmp), save_embedding_layers=False)
                else:
                    self.model.save_pretrained(str(tmp))
            if not self._setup.lora_rank:  # a standalone model folder needs its tokenizer
                tok.hf.save(str(tmp / "tokenizer.json"))
                if tok.config:
                    (tmp / "tokenizer_config.json").write_text(json.dumps(tok.config, indent=2), encoding="utf-8")
                if tok.chat_template:
                    (tmp / "chat_template.jinja").write_text(tok.chat_template, encoding="utf-8")
            checkpoints.write_meta(tmp, self._meta("sampler"))
        return types.SaveWeightsForSamplerResponse(path=str(folder))

    def save_weights_for_sampler(self, name: str, overwrite: bool = False) -> LocalFuture[types.SaveWeightsForSamplerResponse]:
        folder = checkpoints.checkpoint_dir(self._service.checkpoint_dir, checkpoints.SAMPLER_KIND, name)
        return self._service.submit(self._run_save_sampler, folder, overwrite)

    async def save_weights_for_sampler_async(
        self, name: str, overwrite: bool = False
    ) -> LocalFuture[types.SaveWeightsForSamplerResponse]:
        return self.save_weights_for_sampler(name, overwrite)

    def _run_snapshot(self) -> LocalSamplingClient:
        from dataclasses import replace

        from cookbook_cli.engines.local.lora import snapshot
        from cookbook_cli.engines.local.sampling import LocalSamplingClient

        return LocalSamplingClient(self._service, replace(self._loaded, model=snapshot(self.model)))

    def save_weights_and_get_sampling_client(self, name: str | None = None) -> LocalSamplingClient:
        """A sampling client over a snapshot of the current weights (later training
        does not change it). With `name`, the weights are also saved for sampling."""
        saved = self.save_weights_for_sampler(name) if name is not None else None
        client = self._service.submit(self._run_snapshot).result()
        if saved is not None:
            saved.result()
        return client

    async def save_weights_and_get_sampling_client_async(self, name: str | None = None) -> LocalSamplingClient:
        saved = self.save_weights_for_sampler(name) if name is not None else None
        client = await self._service.submit(self._run_snapshot)
        if saved is not None:
            await saved
        return client

    def create_sampling_client(self, model_path: str) -> LocalSamplingClient:
        return self._service.create_sampling_client(model_path=model_path)

    async def create_sampling_client_async(self, model_path: str) -> LocalSamplingClient:
        return await self._service.create_sampling_client_async(model_path=model_path)
