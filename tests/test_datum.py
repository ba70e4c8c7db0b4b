"""datum_from_model_input_weights: truncation, shift by one, aligned weights."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cookbook_cli.data.datum import datum_from_model_input_weights, shift_for_next_token
from cookbook_cli.errors import CookbookError


@st.composite
def sequences(draw):
    n = draw(st.integers(min_value=2, max_value=60))
    tokens = draw(st.lists(st.integers(0, 50_000), min_size=n, max_size=n))
    weights = draw(st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=n, max_size=n))
    max_length = draw(st.one_of(st.none(), st.integers(min_value=2, max_value=80)))
    return tokens, weights, max_length


@settings(max_examples=200, deadline=None, derandomize=True)
@given(sequences())
def test_shift_invariants(seq):
    tokens, weights, max_length = seq
    inputs, targets, w = shift_for_next_token(tokens, weights, max_length)
    kept = len(tokens) if max_length is None else min(len(tokens), max_length)
    assert len(inputs) == len(targets) == len(w) == kept - 1
    assert inputs == tokens[: kept - 1]
    assert targets == tokens[1:kept]
    assert w == weights[1:kept]
    # target i is the token that follows input i
    for i in range(len(inputs) - 1):
        assert targets[i] == inputs[i + 1]


@settings(max_examples=50, deadline=None, derandomize=True)
@given(sequences())
def test_datum_matches_shift(seq):
    from tinker.types import ModelInput

    tokens, weights, max_length = seq
    d = datum_from_model_input_weights(ModelInput.from_ints(tokens), weights, max_length)
    inputs, targets, w = shift_for_next_token(tokens, weights, max_length)
    assert d.model_input.to_ints() == inputs
    assert list(d.loss_fn_inputs["target_tokens"].data) == targets
    assert list(d.loss_fn_inputs["weights"].data) == w
    assert d.loss_fn_inputs["target_tokens"].dtype == "int64"
    assert d.loss_fn_inputs["weights"].dtype == "float32"


def test_misaligned_weights_are_an_error():
    with pytest.raises(CookbookError, match="must align"):
        shift_for_next_token([1, 2, 3], [0.0, 1.0])


def test_too_short_is_an_error():
    with pytest.raises(CookbookError, match="at least 2 tokens"):
        shift_for_next_token([1], [1.0])
    with pytest.raises(CookbookError, match="max_length must be at least 2"):
        shift_for_next_token([1, 2, 3], [1.0] * 3, max_length=1)
