"""Hand-made preference data for the loss tests."""

from __future__ import annotations

import numpy as np
from tinker.types import Datum, ModelInput, TensorData


def datum(tokens: list[int], weights: list[float]) -> Datum:
    n = len(tokens) - 1
    return Datum(
        model_input=ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": TensorData(data=tokens[1:], dtype="int64", shape=[n]),
            "weights": TensorData(data=weights[1:], dtype="float32", shape=[n]),
        },
    )


def random_pairs(rng: np.random.Generator, pairs: int) -> list[Datum]:
    """Interleaved (chosen, rejected) datums of unequal lengths, weights 1 on a suffix."""
    data = []
    for _ in range(2 * pairs):
        n = int(rng.integers(5, 12))
        prompt = int(rng.integers(1, n - 2))
        data.append(datum(rng.integers(0, 100, size=n).tolist(), [0.0] * prompt + [1.0] * (n - prompt)))
    return data
