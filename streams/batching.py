"""Batch delivery inside Faust: agents receive whole fetched batches, one event each.

Faust dispatches every message on its own: several event-loop iterations, task
creations and ``asyncio.wait`` calls, ~100 µs of CPU before any of our code runs,
which caps a worker near 10 k events/s. Its consumer already fetches in batches, so
:class:`BatchingConsumer` keeps Faust's fetcher, flow control, rebalancing, offset
tracking and commits, and changes one thing: for the topics named in
``BatchingApp.batch_topics`` it hands each agent channel *one* event per fetched
partition batch, whose value is the list of Faust :class:`Message` objects.

Acknowledgement is per message and explicit: the batch event itself acknowledges
nothing (its message is born acknowledged, so Faust's stream — its Cython iterator
inlines the acknowledgement of the event's one message — skips it), and the agent
calls :func:`ack` on each message once the outputs it caused are delivered, possibly
later than the batch for messages it holds back. Faust commits an offset only when
it and every offset before it are acknowledged, so an agent that fails before
acknowledging leaves its batch to be processed again.

Other topics (changelogs during recovery, anything else) keep Faust's per-message
path unchanged.

**Event-time alignment.** A topic named in ``BatchingApp.aligned_topics`` is read so
that its partitions progress together in event time (message timestamps): a partition
more than the topic's allowed skew ahead of the slowest partition that still has data
to read is left out of the next fetch until the others catch up. Without it a
repartitioned stream interleaves source partitions days apart in event time (one
partition's fetches can run far ahead), and windows downstream would wait or be
wrong. This is the timestamp synchronization Kafka Streams applies to its inputs.

**Nothing fetched is skipped.** Faust drops fetched records below a partition's *read
offset* (what it delivered last, or where its last seek put the partition). The seek
to committed offsets after a rebalance reads each partition's committed offset and
seeks it in turn, and records the new read offsets only once all are done: when a
partition is revoked halfway (aiokafka's ``IllegalStateError``), the partitions
already moved back keep their old read offset, and Faust dropped everything between
the committed offset and where it had read to. Those records were neither processed
nor acknowledged; the worker went on with later ones, and the next rebalance read the
dropped ones again behind a watermark that had passed them (a soak run dead-lettered
9,866 valid transactions as ``too_late`` this way). Here a fetch that starts behind
the read offset is a rewind: its records are delivered again, which every stage
handles as a redelivery after a restart. The same happens to changelogs: a recovery
that seeks a partition back to offset 0 while a batch still in flight re-sets the read
offset behind it would have skipped the entries before it (seen in the soak, with
1,004,666 entries of a terminal changelog).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from enum import Enum
from typing import Any

import faust
from faust.types import TP, Message
from mode import ServiceT

from streams.compat import FaustConsumer, FaustTransport


class FetchStart(Enum):
    """Where a partition's fetched records start, against its read offset."""

    NEXT = "next"  #: right after what was read (or where the last seek put it)
    GAP = "gap"  #: further on: offsets in between are gone (compaction, markers)
    REWOUND = "rewound"  #: behind it: the position was moved back


def fetch_start(first: int, read_offset: int | None) -> FetchStart:
    """Classify a fetch by its first offset.

    >>> fetch_start(11, 10).value, fetch_start(14, 10).value, fetch_start(3, 10).value
    ('next', 'gap', 'rewound')
    >>> fetch_start(0, None).value
    'next'
    """
    if read_offset is None:
        return FetchStart.NEXT
    if first < read_offset:
        return FetchStart.REWOUND
    if read_offset and first - read_offset > 1:
        return FetchStart.GAP
    return FetchStart.NEXT


class BatchMessage(Message):
    """The message of a batch event; it carries the batch and acknowledges nothing."""

    __slots__ = ("messages",)

    def __init__(self, tp: TP, messages: list[Message], generation_id: int) -> None:
        last = messages[-1]
        super().__init__(
            tp.topic,
            tp.partition,
            last.offset,
            last.timestamp,
            last.timestamp_type,
            None,
            None,
            None,
            None,
            0,
            0,
            tp=tp,
            generation_id=generation_id,
        )
        self.messages = messages
        # Its offset is not its own: never tracked, never acknowledged by Faust.
        self.tracked = True
        self.acked = True


def ack(consumer: Any, messages: Iterable[Message]) -> None:
    """Acknowledge messages of batch events (their offsets become committable)."""
    for message in messages:
        message.ack(consumer)


class BatchingConsumer(FaustConsumer):
    """Faust's aiokafka consumer, delivering batch topics one batch event at a time.

    Built on :class:`streams.compat.FaustConsumer`, so table recovery reads changelogs
    to their true end on the embedded broker too.
    """

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - I/O loop
        batch_topics: frozenset[str] = getattr(self.app, "batch_topics", frozenset())
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set  # type: ignore[attr-defined]
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        to_message = self._to_message
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                records, active = await self._next_records(1.0)
                await self.sleep(0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    # A rebalance stopped the flow after this fetch: read again from
                    # the committed offsets. The assignment may change under the seek
                    # (IllegalStateError for a partition just revoked): not fatal, the
                    # assignment's own seek follows; as in Faust's getmany.
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning("seek to committed offsets failed: %r", exc)
                    continue
                generation = self.app.consumer_generation_id
                for tp, tp_records in records.items():
                    if (
                        self.app.consumer_generation_id != generation
                        or not self.flow_active
                        or self.should_stop
                    ):
                        break
                    if (
                        active is not None
                        and tp not in active
                        and tp not in self._buffered_partitions
                    ):
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if not tp_records:
                        continue
                    r_offset = read_offset[tp]
                    first = tp_records[0].offset
                    start = fetch_start(first, r_offset)
                    if start is FetchStart.REWOUND:
                        self._on_rewound(tp, first, r_offset)
                    elif start is FetchStart.GAP and acks_enabled_for(tp.topic):
                        assert r_offset is not None
                        await self._add_gap(tp, r_offset + 1, first)
                    if tp.topic in batch_topics:
                        batch = [to_message(tp, r) for r in tp_records]
                        await self._deliver_batch(tp, batch, generation)
                    else:
                        for record in tp_records:
                            message = to_message(tp, record)
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                            read_offset[tp] = message.offset
                    read_offset[tp] = tp_records[-1].offset
                if self._commit_every is not None and self._n_acked >= self._commit_every:
                    self._n_acked = 0
                    await self.commit()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    def _on_rewound(self, tp: TP, first: int, read_offset: int | None) -> None:
        self.log.warning(
            "%s fetched from offset %d, behind the read offset %s: delivering again",
            tp,
            first,
            read_offset,
        )

    async def _next_records(self, timeout: float) -> tuple[Any, set[TP] | None]:
        """Fetch records of the active partitions, leaving out those too far ahead."""
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
        active = self._get_active_partitions()
        if active and getattr(self.app, "aligned_topics", None):
            active = self._aligned(active)
        if not active:
            await self.sleep(0.05)
            return {}, active
        records = await self._getmany(active_partitions=active, timeout=timeout)
        return records, active

    def _aligned(self, active: set[TP]) -> set[TP]:
        aligned: dict[str, float] = getattr(self.app, "aligned_topics", {})
        last_ts = self._last_timestamps
        keep = set(active)
        for topic, skew in aligned.items():
            tps = [tp for tp in active if tp.topic == topic]
            if len(tps) < 2:
                continue
            behind = [last_ts.get(tp, float("-inf")) for tp in tps if not self._caught_up(tp)]
            if not behind:
                continue
            floor = min(behind) + skew
            for tp in tps:
                if last_ts.get(tp, float("-inf")) > floor:
                    keep.discard(tp)
        return keep

    def _caught_up(self, tp: TP) -> bool:
        """True when everything the broker holds for ``tp`` has been delivered."""
        highwater = self.highwater(tp)
        if highwater is None:
            return False
        read = self._read_offset.get(tp)
        return highwater == 0 or (read is not None and read + 1 >= highwater)

    @property
    def _last_timestamps(self) -> dict[TP, float]:
        try:
            return self.__dict__["_last_ts"]  # type: ignore[no-any-return]
        except KeyError:
            self.__dict__["_last_ts"] = {}
            return self.__dict__["_last_ts"]  # type: ignore[no-any-return]

    async def _deliver_batch(self, tp: TP, messages: Sequence[Message], generation: int) -> None:
        self._last_timestamps[tp] = messages[-1].timestamp
        on_message_in = self._on_message_in
        for message in messages:
            message.incref()
            on_message_in(tp, message.offset, message)
        batch = BatchMessage(tp, list(messages), generation)
        channels = list(self.app.topics._tp_index.get(tp, ()))  # type: ignore[attr-defined]
        if len(channels) != 1:
            # One agent per batch topic: each message is acknowledged by the one
            # agent that processes it.
            raise RuntimeError(f"{tp.topic} must feed exactly one agent, not {len(channels)}")
        event = self.app.create_event(None, messages, None, batch)
        for channel in channels:
            await self._put(channel.queue, event)

    async def _put(self, queue: Any, event: Any) -> None:
        """Put ``event`` on an agent's queue, giving up if a rebalance stops the flow.

        As Faust's own delivery does: a queue with room takes the event at once; a
        full one is waited on only until the flow is suspended. A rebalance clears the
        agents' queues and cancels their waiting puts; left waiting, the fetcher would
        be cancelled mid-rebalance instead, which crashes it for good (Faust calls
        ``supervisor.wakeup()`` on a fetcher that has none) and stops the worker. An
        abandoned batch is not acknowledged: it is read again from the committed
        offset by whichever worker owns its partition next.
        """
        if not queue.full():
            queue.put_nowait(event)
            return
        put = asyncio.ensure_future(queue.put(event))
        suspended = asyncio.ensure_future(self.suspend_flow.wait())
        try:
            await asyncio.wait({put, suspended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (put, suspended):
                if not future.done():
                    future.cancel()
        if put.done() and not put.cancelled() and put.exception() is not None:
            raise put.exception()


class BatchingTransport(FaustTransport):
    """The aiokafka transport with :class:`BatchingConsumer`."""

    Consumer = BatchingConsumer


class BatchingApp(faust.App):
    """A Faust app whose ``batch_topics`` reach their agents in fetched batches."""

    batch_topics: frozenset[str] = frozenset()
    #: Topics read in event-time alignment, with their allowed skew in seconds.
    aligned_topics: dict[str, float] = {}  # noqa: RUF012

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Coroutines run after the app has stopped its consumer and flushed.
        self.stop_hooks: list[Callable[[], Awaitable[None]]] = []

    async def on_stop(self) -> None:
        """Stop Faust's parts, then run :attr:`stop_hooks`."""
        await super().on_stop()
        for hook in self.stop_hooks:
            await hook()

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)
