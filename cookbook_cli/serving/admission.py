"""The bounded queue in front of the sampler.

At most `max_waiting` requests are being sampled or waiting to be; one more
is refused at once with 429 (and `Retry-After`), so a flood never piles up
unbounded work. A request whose reply is not ready within `timeout` seconds
gets 503 (and `Retry-After`) instead of a connection that hangs; its sampling
still finishes on the engine (a batch's other requests are not disturbed), and
it keeps its place in the count until then, so an overloaded engine is not
handed more work than it can finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from cookbook_cli.serving.errors import ApiError

T = TypeVar("T")


class Admission:
    def __init__(self, max_waiting: int, timeout: float) -> None:
        self.max_waiting = max_waiting
        self.timeout = timeout
        self.waiting = 0

    async def run(self, work: Awaitable[T]) -> T:
        """`work`'s result, or ApiError 429 (queue full) / 503 (not ready in time)."""
        if self.waiting >= self.max_waiting:
            if asyncio.iscoroutine(work):
                work.close()
            raise ApiError(429, f"the server is busy: {self.waiting} requests are waiting for the model; retry shortly", "rate_limit_error", code="queue_full", retry_after=1)
        self.waiting += 1
        task = asyncio.ensure_future(work)
        task.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.timeout)
        except asyncio.TimeoutError:
            raise ApiError(503, f"no reply within {self.timeout:g} s: the model is overloaded; retry later", "server_error", code="timeout", retry_after=max(1, round(self.timeout / 4))) from None

    def _release(self, task: asyncio.Future[object]) -> None:
        self.waiting -= 1
        if not task.cancelled():
            task.exception()  # retrieved, so a timed-out request's failure is not reported as unhandled
