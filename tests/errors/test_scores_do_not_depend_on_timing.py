"""A sequence's logprobs from the local engine do not depend on which other
requests reach the worker with it (issue 24: distillation's teacher scores
differed by ~1e-7 between two identical runs on a busy machine, because
requests that arrived together were packed into one forward pass)."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("torch")


def test_scores_alone_equal_scores_beside_others() -> None:
    from tinker.types import ModelInput

    from cookbook_cli.testing import small_local_engine

    engine = small_local_engine(shape="small")
    try:
        client = engine.sampling_client()
        rng = random.Random(0)
        prompts = [ModelInput.from_ints([rng.randrange(1, 500) for _ in range(rng.randrange(8, 40))]) for _ in range(6)]
        alone = [client.compute_logprobs(p).result() for p in prompts]  # one request per job
        together = [f.result() for f in [client.compute_logprobs(p) for p in prompts]]  # queued at once: one job
        assert together == alone
    finally:
        engine.close()
