"""The one Datum builder for next-token data (supervised, RL, preference,
distillation).

A language model predicts token t+1 from tokens <= t, so the model input is the
sequence without its last token, the targets are the sequence shifted left by
one, and every per-token input (weights, sampling logprobs, advantages, masks)
is shifted with the targets:

    tokens      [a, b, c, d]          weights [0, 0, 1, 1]
    model input [a, b, c]
    targets        [b, c, d]          weights    [0, 1, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cookbook_cli.errors import CookbookError

if TYPE_CHECKING:
    import tinker.types


def shift_for_next_token(
    tokens: list[int], weights: list[float], max_length: int | None = None
) -> tuple[list[int], list[int], list[float]]:
    """(input tokens, target tokens, target weights) after truncating to `max_length`."""
    if len(tokens) != len(weights):
        raise CookbookError(f"{len(tokens)} tokens but {len(weights)} weights; they must align")
    if max_length is not None:
        if max_length < 2:
            raise CookbookError(f"max_length must be at least 2, got {max_length}")
        tokens, weights = tokens[:max_length], weights[:max_length]
    if len(tokens) < 2:
        raise CookbookError("a training example needs at least 2 tokens")
    return tokens[:-1], tokens[1:], weights[1:]


def next_token_datum(tokens: Sequence[int], **per_token: Sequence[float] | Any) -> tinker.types.Datum:
    """The Datum that predicts `tokens[1:]` from `tokens[:-1]`; each keyword is a
    per-token input aligned with `tokens` (lists or numpy arrays), stored shifted
    like the targets, as float32 under its name."""
    from tinker.types import Datum, ModelInput, TensorData

    n = len(tokens) - 1
    if n < 1:
        raise CookbookError("a training sequence needs at least 2 tokens")
    inputs = {"target_tokens": TensorData(data=tokens[1:], dtype="int64", shape=[n])}
    for key, values in per_token.items():
        if len(values) != len(tokens):
            raise CookbookError(f"{len(tokens)} tokens but {len(values)} {key}; they must align")
        inputs[key] = TensorData(data=values[1:], dtype="float32", shape=[n])
    return Datum(model_input=ModelInput.from_ints(list(tokens[:-1])), loss_fn_inputs=inputs)


def datum_from_tokens_weights(
    tokens: list[int], weights: list[float], max_length: int | None = None
) -> tinker.types.Datum:
    """A supervised Datum: truncated to `max_length` tokens, weights on the targets."""
    shift_for_next_token(tokens, weights, max_length)  # checks alignment and length
    if max_length is not None:
        tokens, weights = tokens[:max_length], weights[:max_length]
    return next_token_datum(tokens, weights=weights)


def datum_from_model_input_weights(
    model_input: tinker.types.ModelInput, weights: list[float], max_length: int | None = None
) -> tinker.types.Datum:
    """A next-token-prediction Datum: truncated to `max_length` tokens, inputs
    and targets shifted by one, weights aligned with the targets."""
    return datum_from_tokens_weights(model_input.to_ints(), list(weights), max_length)
