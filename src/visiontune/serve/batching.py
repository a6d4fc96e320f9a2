"""Dynamic batching: requests that arrive within ``max_delay_ms`` of each other
share one forward pass of at most ``max_batch_size`` images.

The batcher waits for company only while other requests are on their way
(received, still being decoded): a lone request is never delayed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Callable

import numpy as np


class DynamicBatcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        executor: Executor,
        max_batch_size: int = 16,
        max_delay_ms: float = 5.0,
        observe: Callable[[int], None] | None = None,
    ):
        self.predict, self.executor = predict, executor
        self.max_batch_size, self.max_delay = max(1, max_batch_size), max(0.0, max_delay_ms) / 1000.0
        self.observe = observe or (lambda n: None)
        self.queue: asyncio.Queue = asyncio.Queue()  # (a new one with each batching task)
        self.task: asyncio.Task | None = None
        self.incoming = 0  # requests received and not yet submitted
        self._inflight: list[asyncio.Future] = []  # futures of the batch being computed

    def arriving(self) -> None:
        """A request was received; the batcher may wait for it (until it is submitted or abandoned)."""
        self.incoming += 1

    def abandon(self) -> None:
        """A received request failed before it was submitted."""
        self.incoming = max(0, self.incoming - 1)

    async def submit(self, pixels: list[np.ndarray]) -> np.ndarray:
        self.abandon()  # no longer on its way: it is here
        if self.task is None or self.task.done():
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._run())
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((pixels, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch, n = [first], len(first[0])
            deadline = loop.time() + self.max_delay
            while n < self.max_batch_size:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or self.incoming == 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                batch.append(item)
                n += len(item[0])
            self._inflight = [fut for _, fut in batch]
            try:
                arrays = np.stack([a for pixels, _ in batch for a in pixels])
                self.observe(len(arrays))
                probs = await loop.run_in_executor(self.executor, self.predict, arrays)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            start = 0
            for pixels, fut in batch:
                if not fut.done():
                    fut.set_result(probs[start : start + len(pixels)])
                start += len(pixels)

    async def close(self, reason: Exception | None = None) -> None:
        """Stop; every request still waiting gets ``reason`` (an unloaded model answers, never hangs)."""
        if self.task is not None:
            self.task.cancel()
        waiting = list(self._inflight)
        while self.queue is not None and not self.queue.empty():
            waiting.append(self.queue.get_nowait()[1])
        for fut in waiting:
            if not fut.done():
                fut.set_exception(reason or RuntimeError("the model was unloaded"))
