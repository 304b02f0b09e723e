"""Count what went wrong in a fault run: the verifier.

Given the ground truth (what the broker acknowledged), the outputs read back, the
features an offline computation gives the same transactions, and what the online
learner says it learned, :func:`verify` counts:

- ``missing``: acknowledged inputs with neither a prediction nor a dead letter;
- ``duplicates``: predictions per transaction id beyond one;
- ``state_violations``: feature vectors whose counts show the feature state skipped
  or repeated an event: every count must equal the offline computation's
  (``count_mismatches``), and while all of a customer's earlier events are within 30
  days of the event, the customer's 30-day count must be its sequence number + 1
  (``sequence_violations``; a run longer than 30 days checks later events by the
  offline counts only);
- ``relearned``: labels the online learner learned more than once (its learned
  count beyond the distinct labeled transactions it read);
- ``order_violations``: records of one customer stored out of sequence order in the
  input log (the pipeline reads a customer's events in log order);
- ``misrouted``: poison without a dead letter of the right reason, or valid
  transactions that were dead-lettered;
- ``rescored``: the duplicates that are a second scoring of the id (different scoring
  times); the others are one prediction record written twice by a producer retry;
- ``producer_repeats``: valid records the producer stored twice (a send that failed
  during a broker outage but had been stored, then sent again): the second copy is
  dead-lettered as a duplicate (informational);
- ``dead_letter_repeats``: dead letters beyond one per input record (informational:
  an at-least-once repeat, harmless to accounting).

Examples
--------
>>> from streams.chaos.plan import Planned
>>> from streams.chaos.truth import GroundTruth
>>> from streams.chaos.observe import Outputs
>>> truth = GroundTruth("tx", "lb")
>>> a = Planned(0, "transactions", b"c", b"", 0, "1", "valid", "c", 0)
>>> b = Planned(1, "transactions", b"c", b"", 0, "2", "valid", "c", 1)
>>> truth.plan([a, b])
>>> truth.ack(a, 0, 0, 1.0); truth.ack(b, 0, 1, 1.0)
>>> out = Outputs("pred", "feat", "dlq")
>>> out.predictions.update({"1": 2})
>>> c = verify(truth, out, expected_counts={}, learning=None)
>>> c.missing, c.duplicates, c.state_violations
(1, 1, 0)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from models.features import FEATURE_NAMES
from streams.chaos.observe import COUNT_FEATURES, Outputs
from streams.chaos.truth import GroundTruth

#: Index, among the count features, of the customer's 30-day count.
_CUSTOMER_30D = 2
#: The customer windows' longest span: an event this long after the customer's first
#: no longer counts every earlier event in its 30-day count.
_WINDOW_30D_MS = 30 * 86_400_000


@dataclass(frozen=True)
class Learning:
    """What the online learner reports: learned count vs distinct labeled ids it read."""

    n_learned: int
    distinct_examples: int
    examples: int


@dataclass
class Counts:
    """The verifier's counts for one run."""

    inputs: int = 0
    poison: int = 0
    unacked: int = 0
    missing: int = 0
    duplicates: int = 0
    state_violations: int = 0
    sequence_violations: int = 0
    count_mismatches: int = 0
    relearned: int = 0
    unlearned: int = 0
    #: Labels the learner says it learned, and distinct labeled ids it had read.
    learned: int = 0
    labeled: int = 0
    order_violations: int = 0
    misrouted: int = 0
    dead_letter_repeats: int = 0
    #: Duplicates that are a second scoring (the rest are one record written twice).
    rescored: int = 0
    #: Valid records stored twice by producer retries (the second copy dead-lettered).
    producer_repeats: int = 0
    #: Poison records dead-lettered with their right reason, by poison kind.
    dead_lettered_kinds: dict[str, int] = field(default_factory=dict)
    missing_ids: list[str] = field(default_factory=list)
    misrouted_examples: list[str] = field(default_factory=list)
    #: A few state violations: id, the counts seen and the counts expected.
    state_examples: list[str] = field(default_factory=list)
    #: Count mismatches by feature (which windows were short or long).
    mismatched_features: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """True when every count that must be zero is."""
        return not (
            self.missing
            or self.duplicates
            or self.state_violations
            or self.relearned
            or self.order_violations
            or self.misrouted
        )

    def line(self) -> str:
        """The summary line of the ``chaos`` command."""
        return (
            f"missing={self.missing} duplicates={self.duplicates} "
            f"state_violations={self.state_violations} relearned={self.relearned}"
        )


def verify(
    truth: GroundTruth,
    outputs: Outputs,
    expected_counts: dict[str, tuple[float, ...]],
    learning: Learning | None,
) -> Counts:
    """Count missing, duplicate, state, learning, order and routing errors of one run."""
    counts = Counts(unacked=len(truth.unacked()))
    valid = truth.acked_valid()
    counts.inputs = len(valid)
    unsure_customers = {p.customer for p in truth.unacked() if p.kind == "valid"}
    first_ms = first_event_ms(truth)
    for acked in valid:
        tx_id = acked.ident
        where = (acked.topic, acked.partition, acked.offset)
        predicted = outputs.predictions.get(tx_id, 0)
        if predicted == 0 and where not in outputs.dead:
            counts.missing += 1
            if len(counts.missing_ids) < 20:
                counts.missing_ids.append(tx_id)
        if where in outputs.dead:
            if predicted and outputs.dead[where][0] == "duplicate_transaction":
                # The producer sent it again after a failed send that had in fact been
                # stored: the first copy got the prediction, this one is a duplicate.
                counts.producer_repeats += 1
            else:
                counts.misrouted += 1
                _example(counts, f"valid {tx_id} dead-lettered: {outputs.dead[where][0]}")
        for copy in outputs.counts.get(tx_id, []):
            bad = False
            want = expected_counts.get(tx_id)
            wrong = [] if want is None else _mismatched(copy, want)
            if wrong:
                counts.count_mismatches += 1
                bad = True
                for name in wrong:
                    counts.mismatched_features[name] = counts.mismatched_features.get(name, 0) + 1
            seq = acked.planned.sequence
            customer = acked.planned.customer
            if (
                seq is not None
                and customer not in unsure_customers
                and acked.planned.timestamp_ms - first_ms[customer] < _WINDOW_30D_MS
                and copy[_CUSTOMER_30D] != seq + 1
            ):
                counts.sequence_violations += 1
                bad = True
            if bad and len(counts.state_examples) < 20:
                wanted = None if want is None else list(want)
                counts.state_examples.append(f"{tx_id} (sequence {seq}): {list(copy)} != {wanted}")
            counts.state_violations += bad
    counts.duplicates = sum(n - 1 for n in outputs.predictions.values() if n > 1)
    counts.rescored = sum(
        len(outputs.scored_times.get(tx_id, ())) - 1
        for tx_id, n in outputs.predictions.items()
        if n > 1
    )
    poison = truth.acked_poison()
    counts.poison = len(poison)
    for acked in poison:
        where = (acked.topic, acked.partition, acked.offset)
        reasons = outputs.dead.get(where)
        if not reasons:
            counts.missing += 1
            if len(counts.missing_ids) < 20:
                counts.missing_ids.append(f"{acked.planned.kind}@{acked.partition}:{acked.offset}")
        elif reasons[0] != acked.planned.expected:
            counts.misrouted += 1
            _example(counts, f"{acked.planned.kind}: {reasons[0]} != {acked.planned.expected}")
        else:
            kind = acked.planned.kind
            counts.dead_lettered_kinds[kind] = counts.dead_lettered_kinds.get(kind, 0) + 1
    counts.dead_letter_repeats = sum(len(r) - 1 for r in outputs.dead.values() if len(r) > 1)
    counts.order_violations = order_violations(truth)
    if learning is not None:
        counts.learned = learning.n_learned
        counts.labeled = learning.distinct_examples
        counts.relearned = max(learning.n_learned - learning.distinct_examples, 0)
        counts.unlearned = max(learning.distinct_examples - learning.n_learned, 0)
    return counts


def _mismatched(seen: tuple[float, ...], want: tuple[float, ...]) -> list[str]:
    """The count features whose value differs from the offline computation."""
    return [
        FEATURE_NAMES[i]
        for i, x, y in zip(COUNT_FEATURES, seen, want, strict=True)
        if abs(x - y) > 1e-6
    ]


def _example(counts: Counts, text: str) -> None:
    if len(counts.misrouted_examples) < 20:
        counts.misrouted_examples.append(text)


def first_event_ms(truth: GroundTruth) -> dict[str | None, int]:
    """Each customer's earliest planned event time (acknowledged or not), in ms."""
    first: dict[str | None, int] = {}
    for p in truth.planned:
        if p.kind == "valid" and p.timestamp_ms < first.get(p.customer, p.timestamp_ms + 1):
            first[p.customer] = p.timestamp_ms
    return first


def order_violations(truth: GroundTruth) -> int:
    """Valid records stored before a record of the same customer with a lower sequence."""
    by_customer: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
    for acked in truth.acked_valid():
        seq = acked.planned.sequence
        if seq is not None and acked.planned.customer is not None:
            by_customer[(acked.partition, acked.planned.customer)].append((acked.offset, seq))
    bad = 0
    for rows in by_customer.values():
        rows.sort()
        highest = -1
        for _, seq in rows:
            if seq < highest:
                bad += 1
            highest = max(highest, seq)
    return bad


def count_features(frame_features: object) -> dict[str, tuple[float, ...]]:
    """Expected count features by transaction id, from an offline feature frame."""
    import pandas as pd

    from models.features import FEATURE_NAMES

    assert isinstance(frame_features, pd.DataFrame)
    values = frame_features[list(FEATURE_NAMES)].to_numpy()[:, list(COUNT_FEATURES)]
    ids = [str(i) for i in frame_features.index]
    return {tx_id: tuple(float(v) for v in row) for tx_id, row in zip(ids, values, strict=True)}
