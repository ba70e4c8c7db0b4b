"""Fixtures for engine tests: tiny random models on the CPU, one service per dtype.

`random:tiny:llama3` is a 2-layer Llama of hidden size 64 with the Llama 3
vocabulary (8.3M parameters, nearly all embedding): fast on two CPU cores, and
real enough (RoPE, GQA, tied embeddings) to exercise the whole path.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

MODEL = "random:tiny:llama3"


def datum(tokens: list[int], **inputs: Any) -> Any:
    """A next-token Datum over `tokens` with extra float loss inputs (one per target)."""
    from tinker import types

    loss_inputs: dict[str, Any] = {"target_tokens": np.asarray(tokens[1:], dtype=np.int64)}
    for k, v in inputs.items():
        loss_inputs[k] = np.asarray(v, dtype=np.float32)
    return types.Datum(model_input=types.ModelInput.from_ints(tokens[:-1]), loss_fn_inputs=loss_inputs)


def random_tokens(rng: np.random.Generator, n: int, vocab: int = 128256) -> list[int]:
    return rng.integers(0, vocab, size=n).tolist()


@pytest.fixture(scope="session")
def service64(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """float64 on the CPU: reference checks hold to ~1e-10."""
    from cookbook_cli.engines.local.service import LocalServiceClient

    with LocalServiceClient(device="cpu", dtype="float64", checkpoint_dir=tmp_path_factory.mktemp("ckpt64")) as svc:
        yield svc


@pytest.fixture(scope="session")
def service32(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """float32 on the CPU: what users get without a GPU."""
    from cookbook_cli.engines.local.service import LocalServiceClient

    with LocalServiceClient(device="cpu", dtype="float32", checkpoint_dir=tmp_path_factory.mktemp("ckpt32")) as svc:
        yield svc


@pytest.fixture(scope="session")
def h() -> SimpleNamespace:
    """Helpers for tests (the import mode is importlib, so tests cannot import this file)."""
    return SimpleNamespace(MODEL=MODEL, datum=datum, random_tokens=random_tokens)


@pytest.fixture(scope="session")
def small_vocab_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`random:tiny:<a 512-word tokenizer>` ("w0" ... "w511", decoded with spaces):
    for checks that do not depend on the vocabulary's size, whose run time does."""
    import tokenizers

    folder = tmp_path_factory.mktemp("vocab512")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({f"w{i}": i for i in range(512)}, unk_token="w0"))
    tok.decoder = tokenizers.decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.save(str(folder / "tokenizer.json"))
    return f"random:tiny:{folder}"
