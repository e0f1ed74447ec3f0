"""Webhook delivery as Clockify does it, with faults on demand: `WebhookSender` posts the
workspace's queued `Delivery` objects through one injected httpx.AsyncClient and keeps a log of
every outcome (sent, dropped, failed, held)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from app.sim.records import Delivery, Sleep

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    delivery: Delivery
    outcome: str  # "sent" | "dropped" | "failed" | "held"
    status: int | None = None
    error: str | None = None
    response_body: str | None = None


@dataclass
class WebhookSender:
    """Posts deliveries with one injected httpx.AsyncClient; faults on demand.

    `drop_probability` drops at random (seeded `rng`); `drop_next`, `duplicate_next`,
    `delay_next` and `hold_next` act on the next n deliveries; `reorder` ("reverse" or
    "shuffle") reorders each batch. Held deliveries go out after the next batch.
    """

    http: httpx.AsyncClient
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    sleep: Sleep = asyncio.sleep
    timeout_s: float = 10.0
    drop_probability: float = 0.0
    reorder: str | None = None
    log: list[DeliveryResult] = field(default_factory=list)
    _drop_n: int = 0
    _duplicate_n: int = 0
    _hold_n: int = 0
    _delays: list[tuple[int, float]] = field(default_factory=list)
    _held: list[Delivery] = field(default_factory=list)

    def drop_next(self, n: int = 1) -> None:
        self._drop_n += n

    def duplicate_next(self, n: int = 1) -> None:
        self._duplicate_n += n

    def hold_next(self, n: int = 1) -> None:
        self._hold_n += n

    def delay_next(self, n: int, delay_s: float) -> None:
        self._delays.append((n, delay_s))

    async def send(self, deliveries: Sequence[Delivery]) -> list[DeliveryResult]:
        batch = list(deliveries)
        if self.reorder == "reverse":
            batch.reverse()
        elif self.reorder == "shuffle":
            self.rng.shuffle(batch)
        elif self.reorder is not None:
            raise ValueError("reorder must be None, 'reverse' or 'shuffle'")
        late, self._held = self._held, []
        results: list[DeliveryResult] = []
        for delivery in batch:
            if self._hold_n > 0:
                self._hold_n -= 1
                self._held.append(delivery)
                results.append(self._record(DeliveryResult(delivery, "held")))
                continue
            results.extend(await self._send_with_faults(delivery))
        for delivery in late:
            results.append(self._record(await self._post(delivery)))
        return results

    async def _send_with_faults(self, delivery: Delivery) -> list[DeliveryResult]:
        if self._delays:
            n, delay_s = self._delays[0]
            self._delays[0] = (n - 1, delay_s)
            if n - 1 <= 0:
                self._delays.pop(0)
            await self.sleep(delay_s)
        if self._drop_n > 0 or (
            self.drop_probability and self.rng.random() < self.drop_probability
        ):
            self._drop_n = max(0, self._drop_n - 1)
            return [self._record(DeliveryResult(delivery, "dropped"))]
        copies = 1
        if self._duplicate_n > 0:
            self._duplicate_n -= 1
            copies = 2
        return [self._record(await self._post(delivery)) for _ in range(copies)]

    async def _post(self, delivery: Delivery) -> DeliveryResult:
        try:
            response = await self.http.post(
                delivery.url,
                content=delivery.body,
                headers=delivery.headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            logger.warning(
                "webhook %s for entry %s to %s failed: %s",
                delivery.event,
                delivery.entry_id,
                delivery.url,
                type(exc).__name__,
            )
            return DeliveryResult(delivery, "failed", error=type(exc).__name__)
        return DeliveryResult(
            delivery, "sent", status=response.status_code, response_body=response.text[:1000]
        )

    def _record(self, result: DeliveryResult) -> DeliveryResult:
        self.log.append(result)
        return result
