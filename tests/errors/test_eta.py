"""The ETA of progress lines: nothing from the warm-up step, then close to the
real remaining time (issue 24: 598 s was shown for a 36 s run)."""

from __future__ import annotations

from cookbook_cli.run.progress import Eta, format_eta


def _run(times: list[float], total: int) -> list[float | None]:
    eta = Eta(total)
    eta.update(0, 0.0)
    return [eta.update(step, t) for step, t in enumerate(times, start=1)]


def test_the_warm_up_step_is_not_counted() -> None:
    # a 20 s first step (model and kernels warming up), then 1 s steps: 10 steps take 29 s
    times = [20.0 + i for i in range(10)]
    etas = _run(times, 10)
    assert etas[:2] == [None, None]  # the warm-up, then one timed step: too few to say
    for step, eta in enumerate(etas[2:], start=3):
        assert eta is not None and abs(eta - (10 - step)) < 1e-9


def test_a_changing_pace_is_followed() -> None:
    times, t = [], 0.0
    for step in range(1, 41):
        t += 5.0 if step == 1 else (1.0 if step <= 20 else 2.0)
        times.append(t)
    etas = _run(times, 40)
    assert abs(etas[19] - 20 * 1.0) < 1e-9  # steady 1 s/step
    assert abs(etas[29] - 10 * 2.0) < 0.5  # 10 steps into the slower pace, within 2.5%


def test_several_steps_in_one_update_and_resumed_runs() -> None:
    eta = Eta(100)
    eta.update(50, 0.0)  # resumed at step 50: the earlier steps' time is not known
    assert eta.update(51, 30.0) is None  # warm-up
    assert eta.update(55, 34.0) == 45 * 1.0
    assert format_eta(None) == "eta=?" and format_eta(45) == "eta=45s" and format_eta(600) == "eta=10min"
