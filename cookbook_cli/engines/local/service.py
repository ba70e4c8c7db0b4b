"""The local engine's ServiceClient.

All model work of one service runs on a single worker thread, in submission
order: that is Tinker's ordering guarantee (submit `optim_step` right after
`forward_backward`, wait later) and it keeps one device free of contention.
Futures returned to the caller complete when the worker gets there, so async
recipes keep their event loop free while the model computes.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cookbook_cli.engines.futures import LocalFuture
from cookbook_cli.engines.local import checkpoints
from cookbook_cli.engines.local.precision import Precision
from cookbook_cli.engines.local.threads import follow_allowed_cpus
from cookbook_cli.errors import CookbookError

T = TypeVar("T")
DEFAULT_SAMPLING_ROWS = 64
LOGITS_BUDGET = 2 << 30  # bytes of float32 logits one training micro-batch may hold


def _positive(name: str, value: int | str | None) -> int | None:
    """A whole number >= 1 (engine options from the command line arrive as strings)."""
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number < 1 or (isinstance(value, float) and value != number):
        raise CookbookError(f"engine option {name} must be a whole number >= 1, got {value!r}")
    return number


def default_checkpoint_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return cache / "cookbook" / "local" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class LocalServiceClient:
    """Training and sampling on this machine with PyTorch.

    Args:
        device: "cpu", "cuda", "cuda:1", ...; default CUDA when present, else CPU.
        dtype: "bfloat16", "float32", "float64", ...; default bf16 on CUDA, float32 on CPU.
        checkpoint_dir: where save_state / save_weights_for_sampler write (pass the
            run's log directory); default a fresh folder under ~/.cache/cookbook/local.
        cache_dir: Hugging Face cache to load repo ids from (default: HF's own).
        packing: how training batches are laid out (see `packing`): auto (default),
            flat, rows, or pad (one right-padded row per sequence).
        max_tokens_per_microbatch: token slots in one forward pass; a larger batch
            is run in micro-batches whose gradients accumulate. Default: as many as
            keep one micro-batch's float32 logits within 2 GiB (4096 tokens with a
            128K vocabulary). A sequence longer than this runs alone.
        max_sampling_rows: sequences decoded together when concurrent sample
            requests are batched (default 64); further requests wait for room,
            and a request of more samples than that runs alone.
    """

    engine = "local"

    def __init__(
        self,
        device: str | None = None,
        dtype: str | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        packing: str = "auto",
        max_tokens_per_microbatch: int | str | None = None,
        max_sampling_rows: int | str = DEFAULT_SAMPLING_ROWS,
    ) -> None:
        from cookbook_cli.engines.local.packing import check_mode

        self.packing = check_mode(packing)
        self.max_tokens_per_microbatch = _positive("max_tokens_per_microbatch", max_tokens_per_microbatch)
        self.max_sampling_rows = _positive("max_sampling_rows", max_sampling_rows)
        self.precision = Precision.choose(device, dtype)
        follow_allowed_cpus()
        self.checkpoint_dir = Path(checkpoint_dir).expanduser().resolve() if checkpoint_dir else default_checkpoint_dir()
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cookbook-local")
        self._queued = 0  # jobs submitted and not yet started
        self._queued_lock = threading.Lock()

    def max_tokens_for(self, vocab_size: int) -> int:
        """The micro-batch bound for a model of `vocab_size` (see the class doc)."""
        if self.max_tokens_per_microbatch is not None:
            return self.max_tokens_per_microbatch
        return max(512, min(32768, (LOGITS_BUDGET // (4 * vocab_size)) // 256 * 256))

    # -- worker ------------------------------------------------------------------
    def submit(self, fn: Callable[..., T], *args: Any) -> LocalFuture[T]:
        """Queue `fn(*args)` on the worker thread."""
        with self._queued_lock:
            self._queued += 1

        def job() -> T:
            with self._queued_lock:
                self._queued -= 1
            return fn(*args)

        return LocalFuture(self._executor.submit(job))

    def queued(self) -> int:
        """Jobs waiting for the worker (not counting the one it runs)."""
        with self._queued_lock:
            return self._queued

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> LocalServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- training clients --------------------------------------------------------
    def _setup(
        self, base_model: str, rank: int, seed: int | None, train_mlp: bool, train_attn: bool, train_unembed: bool
    ) -> Any:
        from cookbook_cli.engines.local.training import TrainingSetup

        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise CookbookError(f"rank must be a whole number >= 0 (0: full fine-tuning), got {rank!r}")
        return TrainingSetup(base_model, rank, 0 if seed is None else int(seed), train_mlp, train_attn, train_unembed)

    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
    ) -> Any:
        """A training client: LoRA of `rank` (>= 1), or full fine-tuning with rank 0.
        `seed` picks the adapter's initialisation (random base models have a fixed one)."""
        from cookbook_cli.engines.local.training import LocalTrainingClient

        setup = self._setup(base_model, rank, seed, train_mlp, train_attn, train_unembed)
        return self.submit(LocalTrainingClient.create, self, setup).result()

    async def create_lora_training_client_async(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
    ) -> Any:
        from cookbook_cli.engines.local.training import LocalTrainingClient

        setup = self._setup(base_model, rank, seed, train_mlp, train_attn, train_unembed)
        return await self.submit(LocalTrainingClient.create, self, setup)

    def _from_state(self, path: str, with_optimizer: bool) -> Any:
        from cookbook_cli.engines.local.training import LocalTrainingClient, TrainingSetup

        folder = checkpoints.resolve(self.checkpoint_dir, path, checkpoints.STATE_KIND)
        meta = checkpoints.read_meta(folder)
        client = LocalTrainingClient.create(self, TrainingSetup.from_meta(meta))
        client._load(folder, with_optimizer)
        return client

    def create_training_client_from_state(self, path: str) -> Any:
        return self.submit(self._from_state, path, False).result()

    async def create_training_client_from_state_async(self, path: str) -> Any:
        return await self.submit(self._from_state, path, False)

    def create_training_client_from_state_with_optimizer(self, path: str) -> Any:
        return self.submit(self._from_state, path, True).result()

    async def create_training_client_from_state_with_optimizer_async(self, path: str) -> Any:
        return await self.submit(self._from_state, path, True)

    # -- sampling clients --------------------------------------------------------
    def _attention(self) -> str | None:
        return self.precision.attention(self.precision.compute)

    def _sampling_client(self, model_path: str | None, base_model: str | None) -> Any:
        from cookbook_cli.engines.local.models import load_base_model
        from cookbook_cli.engines.local.sampling import LocalSamplingClient

        if (model_path is None) == (base_model is None):
            raise CookbookError("create_sampling_client needs exactly one of model_path or base_model")
        if base_model is not None:
            loaded = load_base_model(base_model, self.precision.compute, self.cache_dir, self._attention())
        else:
            loaded = self._load_sampler_weights(model_path)  # type: ignore[arg-type]
        loaded.model.to(self.precision.device).requires_grad_(False)
        return LocalSamplingClient(self, loaded)

    def _load_sampler_weights(self, model_path: str) -> Any:
        from cookbook_cli.engines.local.models import load_base_model

        folder = checkpoints.resolve(self.checkpoint_dir, model_path, checkpoints.SAMPLER_KIND)
        meta = checkpoints.read_meta(folder)
        if meta.get("kind") != "sampler":
            raise CookbookError(
                f"{str(folder)!r} holds training state; sample from the path save_weights_for_sampler returned"
            )
        if not meta.get("lora_rank"):
            loaded = load_base_model(str(folder), self.precision.compute, attention=self._attention())
            loaded.base_model = meta["base_model"]
            return loaded
        import peft

        loaded = load_base_model(meta["base_model"], self.precision.compute, self.cache_dir, self._attention())
        from cookbook_cli.engines.local.quiet import no_hf_progress_bars

        with warnings.catch_warnings(), no_hf_progress_bars():
            warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            loaded.model = peft.PeftModel.from_pretrained(loaded.model, str(folder))
        loaded.model.eval()
        return loaded

    def create_sampling_client(self, model_path: str | None = None, base_model: str | None = None) -> Any:
        """Sample from `save_weights_for_sampler`'s path, or from an untrained base model."""
        return self.submit(self._sampling_client, model_path, base_model).result()

    async def create_sampling_client_async(self, model_path: str | None = None, base_model: str | None = None) -> Any:
        return await self.submit(self._sampling_client, model_path, base_model)
