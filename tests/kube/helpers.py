"""Waiting helpers for the asynchronous kube tests."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from controller.kube.watching import EventType, KubeEvent


async def next_event(queue: asyncio.Queue[KubeEvent], timeout: float = 5.0) -> KubeEvent:
    return await asyncio.wait_for(queue.get(), timeout)


async def events_until(
    queue: asyncio.Queue[KubeEvent], done: Callable[[KubeEvent], bool], timeout: float = 10.0
) -> list[KubeEvent]:
    """Every event up to and including the first for which `done` is true."""
    out: list[KubeEvent] = []

    async def collect() -> None:
        while True:
            out.append(await queue.get())
            if done(out[-1]):
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise AssertionError(
            f"timed out; events so far: {[(e.type.value, e.object and e.object['metadata']['name']) for e in out]}"
        ) from None
    return out


def synced(event: KubeEvent) -> bool:
    return event.type is EventType.SYNCED


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
