"""Learning-rate schedules: linear, cosine, constant, with warmup."""

from __future__ import annotations

import math

import pytest

from cookbook_cli.errors import CookbookError
from cookbook_cli.optim import learning_rate_at


def lrs(schedule: str, total: int = 10, warmup: int = 0, min_ratio: float = 0.0) -> list[float]:
    return [learning_rate_at(s, total, 1.0, schedule, warmup, min_ratio) for s in range(total)]


def test_constant_stays_at_the_peak():
    assert lrs("constant") == [1.0] * 10


def test_linear_falls_from_the_peak_towards_zero():
    got = lrs("linear")
    assert got == pytest.approx([1 - s / 10 for s in range(10)])
    assert all(a > b for a, b in zip(got, got[1:]))


def test_cosine_follows_a_half_cosine():
    got = lrs("cosine")
    assert got == pytest.approx([0.5 * (1 + math.cos(math.pi * s / 10)) for s in range(10)])
    assert got[5] == pytest.approx(0.5)


def test_warmup_rises_linearly_then_the_schedule_runs_over_the_rest():
    got = lrs("linear", total=10, warmup=4)
    assert got[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert got[4:] == pytest.approx([1 - k / 6 for k in range(6)])
    assert lrs("constant", warmup=2)[:3] == pytest.approx([0.5, 1.0, 1.0])


def test_min_lr_ratio_is_the_floor_of_the_decay():
    got = lrs("cosine", total=100, min_ratio=0.1)
    assert min(got) > 0.1 and got[-1] == pytest.approx(0.1, abs=1e-3)
    assert learning_rate_at(99, 100, 2.0, "linear", 0, 0.5) == pytest.approx(2.0 * (0.5 + 0.5 * 0.01))


def test_scales_with_the_base_rate():
    assert learning_rate_at(3, 10, 3e-4, "cosine") == pytest.approx(3e-4 * lrs("cosine")[3])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": "cosin"}, "Did you mean 'cosine'"),
        ({"total_steps": 0}, "total_steps"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"min_lr_ratio": 1.5}, "min_lr_ratio"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, message):
    args = {"step": 0, "total_steps": 10, "base_lr": 1.0, "schedule": "linear", "warmup_steps": 0, "min_lr_ratio": 0.0, **kwargs}
    with pytest.raises(CookbookError, match=message):
        learning_rate_at(**args)
