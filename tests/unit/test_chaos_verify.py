"""The fault harness's verifier: each count on crafted ground truths and outputs."""

from __future__ import annotations

from types import SimpleNamespace

from streams.chaos.observe import COUNT_FEATURES, Outputs
from streams.chaos.plan import Planned
from streams.chaos.suite import totals
from streams.chaos.truth import GroundTruth
from streams.chaos.verify import Counts, Learning, order_violations, verify

TX, LB = "tx", "lb"


def valid(index: int, ident: str, customer: str = "c", sequence: int = 0) -> Planned:
    return Planned(
        index, "transactions", customer.encode(), b"{}", 0, ident, "valid", customer, sequence
    )


def poison(index: int, ident: str, expected: str) -> Planned:
    return Planned(index, "transactions", b"p", b"x", 0, ident, "invalid_json", expected=expected)


def truth_of(*acked: tuple[Planned, int], unacked: tuple[Planned, ...] = ()) -> GroundTruth:
    """Ground truth with ``acked`` (record, offset) on partition 0, and ``unacked`` ones."""
    truth = GroundTruth(TX, LB)
    truth.plan([p for p, _ in acked] + list(unacked))
    for planned, offset in acked:
        truth.ack(planned, 0, offset, 1.0)
    return truth


def outputs() -> Outputs:
    return Outputs("pred", "feat", "dlq")


def counts_vector(customer_30d: float) -> tuple[float, ...]:
    """Count features with the customer's 30-day count set (the verifier's index 2)."""
    values = [1.0] * len(COUNT_FEATURES)
    values[2] = customer_30d
    return tuple(values)


def test_an_input_with_a_prediction_or_a_dead_letter_is_not_missing() -> None:
    a, b, c = valid(0, "a"), valid(1, "b", sequence=1), valid(2, "c", sequence=2)
    truth = truth_of((a, 0), (b, 1), (c, 2))
    out = outputs()
    out.predictions.update({"a": 1})
    out.dead[(TX, 0, 1)] = ["internal_error"]  # b: dead-lettered (wrongly, but accounted)
    counts = verify(truth, out, {}, None)
    assert (counts.missing, counts.missing_ids) == (1, ["c"])
    assert counts.misrouted == 1  # a valid transaction should not be dead-lettered


def test_unacknowledged_inputs_are_owed_nothing() -> None:
    a, lost = valid(0, "a"), valid(1, "lost", sequence=1)
    counts = verify(truth_of((a, 0), unacked=(lost,)), outputs(), {}, None)
    assert (counts.missing, counts.unacked, counts.inputs) == (1, 1, 1)


def test_duplicates_count_predictions_beyond_one_per_id() -> None:
    a, b = valid(0, "a"), valid(1, "b", sequence=1)
    out = outputs()
    out.predictions.update({"a": 3, "b": 1, "x": 2})
    counts = verify(truth_of((a, 0), (b, 1)), out, {}, None)
    assert counts.duplicates == 2 + 1
    assert counts.missing == 0


def test_a_customer_count_that_skips_or_repeats_a_sequence_number_is_a_state_violation() -> None:
    records = [valid(i, f"t{i}", sequence=i) for i in range(4)]
    out = outputs()
    out.predictions.update({p.ident: 1 for p in records})
    out.counts["t0"] = [counts_vector(1)]  # right: sequence 0 -> 1 in 30 days
    out.counts["t1"] = [counts_vector(3)]  # skipped one
    out.counts["t2"] = [counts_vector(2)]  # repeated one (should be 3)
    out.counts["t3"] = [counts_vector(4), counts_vector(5)]  # a right copy and a wrong one
    counts = verify(truth_of(*((p, p.index) for p in records)), out, {}, None)
    assert counts.state_violations == 3
    assert counts.sequence_violations == 3


def test_counts_that_differ_from_the_offline_computation_are_state_violations() -> None:
    a = valid(0, "a")
    out = outputs()
    out.predictions.update({"a": 1})
    out.counts["a"] = [counts_vector(1)]
    expected = {"a": tuple(v + (0.5 if i == 0 else 0.0) for i, v in enumerate(counts_vector(1)))}
    counts = verify(truth_of((a, 0)), out, expected, None)
    assert (counts.state_violations, counts.sequence_violations) == (1, 0)
    assert counts.mismatched_features == {"CUSTOMER_ID_NB_TX_1DAY_WINDOW": 1}


def test_past_30_days_of_a_customer_only_the_offline_counts_are_checked() -> None:
    day_ms = 86_400_000
    first = valid(0, "first")
    late = Planned(1, "transactions", b"c", b"{}", 31 * day_ms, "late", "valid", "c", 5)
    out = outputs()
    out.predictions.update({"first": 1, "late": 1})
    out.counts["first"] = [counts_vector(1)]
    out.counts["late"] = [counts_vector(2)]  # 5 earlier events, only one of them in 30 days
    right = {"late": counts_vector(2)}
    counts = verify(truth_of((first, 0), (late, 1)), out, right, None)
    assert (counts.state_violations, counts.sequence_violations) == (0, 0)
    wrong = {"late": counts_vector(3)}
    counts = verify(truth_of((first, 0), (late, 1)), out, wrong, None)
    seen = (counts.state_violations, counts.count_mismatches, counts.sequence_violations)
    assert seen == (1, 1, 0)
    assert counts.state_examples and counts.state_examples[0].startswith("late (sequence 5)")


def test_customers_with_an_unacknowledged_record_are_not_held_to_their_sequence() -> None:
    a, lost = valid(0, "a", sequence=1), valid(1, "lost", sequence=0)
    out = outputs()
    out.predictions.update({"a": 1})
    out.counts["a"] = [counts_vector(1)]  # sequence 0 may never have reached the log
    assert verify(truth_of((a, 0), unacked=(lost,)), out, {}, None).state_violations == 0


def test_relearned_is_what_the_learner_learned_beyond_the_distinct_labels_it_read() -> None:
    a = valid(0, "a")
    out = outputs()
    out.predictions.update({"a": 1})
    twice = verify(
        truth_of((a, 0)), out, {}, Learning(n_learned=12, distinct_examples=10, examples=13)
    )
    assert (twice.relearned, twice.unlearned, twice.learned, twice.labeled) == (2, 0, 12, 10)
    short = verify(
        truth_of((a, 0)), out, {}, Learning(n_learned=9, distinct_examples=10, examples=10)
    )
    assert (short.relearned, short.unlearned) == (0, 1)
    assert verify(truth_of((a, 0)), out, {}, None).relearned == 0


def test_poison_needs_one_dead_letter_with_its_reason() -> None:
    right, wrong, lost = (
        poison(0, "p0", "invalid_json"),
        poison(1, "p1", "too_late"),
        poison(2, "p2", "empty"),
    )
    out = outputs()
    out.dead[(TX, 0, 0)] = ["invalid_json", "invalid_json"]  # repeated: informational
    out.dead[(TX, 0, 1)] = ["duplicate_transaction"]
    counts = verify(truth_of((right, 0), (wrong, 1), (lost, 2)), out, {}, None)
    assert (counts.poison, counts.missing, counts.misrouted) == (3, 1, 1)
    assert counts.dead_letter_repeats == 1
    assert counts.dead_lettered_kinds == {"invalid_json": 1}
    assert counts.misrouted_examples == ["invalid_json: duplicate_transaction != too_late"]
    assert not counts.clean


def test_order_violations_count_records_stored_behind_a_higher_sequence() -> None:
    records = [valid(0, "a", sequence=0), valid(1, "b", sequence=2), valid(2, "c", sequence=1)]
    assert order_violations(truth_of((records[0], 0), (records[1], 1), (records[2], 2))) == 1
    assert order_violations(truth_of((records[0], 0), (records[2], 1), (records[1], 2))) == 0


def test_outputs_are_read_from_the_wire_form_of_each_topic() -> None:
    out = outputs()
    values = [0.0] * 20
    out.on_message("pred", SimpleNamespace(value=b'{"transaction_id": "a"}'))
    out.on_message("pred", SimpleNamespace(value=b'{"transaction_id": "a"}'))
    out.on_message(
        "feat",
        SimpleNamespace(value=b'{"transaction_id": "a", "values": %s}' % str(values).encode()),
    )
    dead = b'{"source_topic": "tx", "source_partition": 1, "source_offset": 7, "reason": "empty"}'
    out.on_message("dlq", SimpleNamespace(value=dead))
    assert out.predictions["a"] == 2
    assert out.counts["a"] == [tuple(0.0 for _ in COUNT_FEATURES)]
    assert out.dead[("tx", 1, 7)] == ["empty"]
    assert out.outcomes() == 2


def test_the_summary_line_adds_up_every_run() -> None:
    total = totals([Counts(missing=1, relearned=1), Counts(duplicates=2, state_violations=3)])
    assert total.line() == "missing=1 duplicates=2 state_violations=3 relearned=1"
    assert Counts().clean and not total.clean
