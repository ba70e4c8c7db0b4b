"""Base models: named random shapes (parameter counts as documented), a model
folder and the HF cache through the real from_pretrained, and one-line errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def documented_counts() -> dict[tuple[str, str], int]:
    """The parameter-count table in the shapes module's docstring."""
    from cookbook_cli.engines.local import shapes

    counts = {}
    for line in (shapes.__doc__ or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] in shapes.SHAPES:
            nums = [int(c.replace(",", "")) for c in cells[5:]]
            counts[(cells[0], "non_embedding")], counts[(cells[0], "llama3")], counts[(cells[0], "qwen3")] = nums
    return counts


def test_documented_parameter_counts_are_the_formula() -> None:
    from cookbook_cli.engines.local.shapes import SHAPES

    table = documented_counts()
    assert len(table) == 3 * len(SHAPES)
    for name, shape in SHAPES.items():
        assert table[(name, "non_embedding")] == shape.non_embedding_params()
        assert table[(name, "llama3")] == shape.num_params(128256)
        assert table[(name, "qwen3")] == shape.num_params(151669)


@pytest.mark.parametrize("tokenizer", ["llama3", "qwen3"])
def test_random_model_matches_its_shape_and_tokenizer(shared_tokenizers: Path, tokenizer: str) -> None:
    from cookbook_cli.engines.local.models import build_random_model
    from cookbook_cli.engines.local.shapes import SHAPES

    name = "llama3" if tokenizer == "llama3" else str(shared_tokenizers / tokenizer)
    model, tok = build_random_model(f"random:tiny:{name}")
    assert model.config.vocab_size == tok.vocab_size
    assert sum(p.numel() for p in model.parameters()) == SHAPES["tiny"].num_params(tok.vocab_size)
    again, _ = build_random_model(f"random:tiny:{name}")  # seeded: the same weights every time
    assert all(np.array_equal(a.detach().numpy(), b.detach().numpy()) for a, b in zip(model.parameters(), again.parameters()))


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model saved as a Hugging Face folder (config, safetensors, tokenizer)."""
    from cookbook_cli.engines.local.models import build_random_model

    model, tok = build_random_model("random:tiny:llama3")
    folder = tmp_path_factory.mktemp("hf-model")
    model.save_pretrained(str(folder))
    tok.hf.save(str(folder / "tokenizer.json"))
    return folder


def logprobs(sc: Any, tokens: list[int]) -> list[float | None]:
    from tinker import types

    return sc.compute_logprobs(types.ModelInput.from_ints(tokens)).result()


def test_model_folder_loads_through_from_pretrained(h: Any, service32: Any, saved_model: Path) -> None:
    tokens = [128000, 9906, 1917, 11, 1268, 527, 499]
    from_folder = service32.create_sampling_client(base_model=str(saved_model))
    random = service32.create_sampling_client(base_model=h.MODEL)
    np.testing.assert_allclose(logprobs(from_folder, tokens)[1:], logprobs(random, tokens)[1:], atol=1e-5)
    tc = service32.create_lora_training_client(str(saved_model), rank=2)
    assert tc.get_tokenizer().vocab_size == 128256


def test_repo_id_loads_from_the_hf_cache(h: Any, saved_model: Path, tmp_path: Path) -> None:
    """A repo id resolves through the HF cache layout (offline), as a downloaded model would."""
    from cookbook_cli.engines.local.service import LocalServiceClient

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-llama"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(saved_model, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    with LocalServiceClient(device="cpu", cache_dir=tmp_path / "hub", checkpoint_dir=tmp_path / "ckpt") as svc:
        sc = svc.create_sampling_client(base_model="tiny-org/tiny-llama")
        tokens = [128000, 9906, 1917]
        want = svc.create_sampling_client(base_model=h.MODEL)
        np.testing.assert_allclose(logprobs(sc, tokens)[1:], logprobs(want, tokens)[1:], atol=1e-5)
        assert sc.get_tokenizer().vocab_size == 128256


@pytest.mark.parametrize(
    ("base_model", "message"),
    [
        ("random:huge:llama3", "unknown model shape 'huge'"),
        ("random:tiny", "must be random:<shape>:<tokenizer>"),
        ("/no/such/model/dir", "model path '/no/such/model/dir' does not exist"),
        ("not-a-model", "unknown model 'not-a-model'"),
        ("no-such-org/no-such-model", "cannot load model 'no-such-org/no-such-model'"),
    ],
)
def test_bad_base_model_is_one_line(service32: Any, base_model: str, message: str) -> None:
    from cookbook_cli.errors import CookbookError

    with pytest.raises(CookbookError, match=re.escape(message)) as info:
        service32.create_lora_training_client(base_model, rank=2)
    assert "\n" not in str(info.value)


def test_folder_without_config_is_one_line(service32: Any, tmp_path: Path) -> None:
    from cookbook_cli.errors import CookbookError

    with pytest.raises(CookbookError, match="has no config.json"):
        service32.create_sampling_client(base_model=str(tmp_path))


@pytest.mark.parametrize(("kwargs", "message"), [({"dtype": "float8"}, "unknown dtype"), ({"device": "tpu9"}, "unknown device")])
def test_bad_device_or_dtype(kwargs: dict[str, str], message: str) -> None:
    from cookbook_cli.engines.local.service import LocalServiceClient
    from cookbook_cli.errors import CookbookError

    with pytest.raises(CookbookError, match=message):
        LocalServiceClient(**kwargs)


def test_default_device_and_dtype() -> None:
    import torch

    from cookbook_cli.engines.local.precision import Precision

    p = Precision.choose(None, None)
    if torch.cuda.is_available():
        assert p.device.type == "cuda" and p.compute == torch.bfloat16
    else:
        assert p.device.type == "cpu" and p.compute == torch.float32
