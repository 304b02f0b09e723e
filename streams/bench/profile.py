"""Stage profile: time per event of each pure stage, in process, on a batch stream.

The stream is fed to :class:`~streams.bench.inprocess.InProcessWorker` in batches of
``batch_size`` transactions (with the labels due in between), as a worker takes them.
Each stage's CPU time (``time.process_time``: other processes on a shared machine do
not inflate it) is divided by the transactions fed. Parts that run inside one
call (decoding inside the customer stage, the models inside scoring) are timed again
on their own over the same data, and the rest of the call is reported beside them.
With ``cprofile`` the run is repeated under :mod:`cProfile` and the functions with
the most own time are listed.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass

from models.reasons import top_reasons
from streams.bench.inprocess import InProcessWorker
from streams.bench.latency import take
from streams.bench.load import Messages
from streams.bench.report import Table, us
from streams.codec import decode, encode
from streams.events import EnrichedTransaction, Label, Prediction, Transaction
from streams.scoring import ModelSet
from streams.settings import StreamsSettings

#: Transactions fed to a throwaway worker before the measured one (see stage_profile).
WARM_UP = 1_000


@dataclass
class Profile:
    """Seconds per transaction of each stage and part."""

    transactions: int
    rows: list[tuple[str, float, str]]
    total_s: float
    cprofile: str | None = None


def feed(worker: InProcessWorker, messages: Messages, batch_size: int) -> float:
    """Push every message through ``worker`` in batches; return the wall seconds."""
    start = 0
    n = len(messages)
    started = time.perf_counter()
    while start < n:
        stop, tx = start, 0
        while stop < n and tx < batch_size:
            tx += messages.kinds[stop]
            stop += 1
        records = worker.records(messages, start, stop)
        labels = [r for r in records if r.topic == messages.topics[1]]
        transactions = [r for r in records if r.topic == messages.topics[0]]
        worker.process(labels, transactions)
        start = stop
    worker.release()
    return time.perf_counter() - started


def _best(fn: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def stage_profile(
    settings: StreamsSettings,
    models: ModelSet,
    messages: Messages,
    batch_size: int,
    cprofile: bool = False,
) -> Profile:
    """Time every stage per transaction over ``messages``.

    A throwaway worker first takes the first ``WARM_UP`` transactions, so one-time
    costs of the process (lazy imports, first calls into onnxruntime and numpy) are
    not charged to the stages, as the worker's own figures leave its start-up out.
    """
    warm, _ = take(messages, 0, WARM_UP)
    feed(InProcessWorker(settings, models), warm, batch_size)
    worker = InProcessWorker(settings, models, clock=time.process_time)
    worker.matrices = []
    wall = feed(worker, messages, batch_size)
    n_tx = messages.transactions
    tx_values = [v for v, k in zip(messages.values, messages.kinds, strict=True) if k == 1]
    # Parts, timed again on their own over the same data.
    label_values = [v for v, k in zip(messages.values, messages.kinds, strict=True) if k == 0]
    decode_s = _best(lambda: [decode(Transaction, v) for v in tx_values], 1)
    decode_labels_s = _best(lambda: [decode(Label, v) for v in label_values], 1)
    enriched_values = worker.enriched_values
    decode_enriched_s = _best(
        lambda: [decode(EnrichedTransaction, v) for v in enriched_values], 1
    ) * (n_tx / max(1, len(enriched_values)))
    enriched_objs = [decode(EnrichedTransaction, v) for v in enriched_values]
    encode_enriched_s = _best(lambda: [encode(e) for e in enriched_objs], 1) * (
        n_tx / max(1, len(enriched_objs))
    )
    matrices = worker.matrices or []
    scorer = worker.scorer.models
    deep_s = online_s = reasons_s = 0.0
    if scorer.deep is not None:
        deep = scorer.deep
        deep_s = _best(lambda: [deep.score_batch(X) for X in matrices])
    if scorer.online is not None:
        online = scorer.online
        online_s = _best(lambda: [online.predict_proba_many(X) for X in matrices])
        k = settings.scoring.reason_codes
        names = worker.scorer.feature_names
        reasons_s = _best(
            lambda: [top_reasons(online.contributions_many(X), k=k).names(names) for X in matrices]
        )
    predictions = [decode(Prediction, v) for v in worker.predictions]
    encode_pred_s = _best(lambda: [encode(p) for p in predictions], 1) * (
        n_tx / max(1, len(predictions))
    )
    sec = worker.seconds
    rows: list[tuple[str, float, str]] = []

    def add(name: str, seconds: float, note: str = "") -> None:
        rows.append((name, seconds / n_tx, note))

    customer = sec["ingest: customer stage"]
    add("ingest: decode + validate (pydantic)", decode_s, "timed alone")
    add("ingest: encode enriched (pydantic)", encode_enriched_s, "timed alone")
    add(
        "ingest: clean + customer windows + rest",
        max(0.0, customer - decode_s - encode_enriched_s),
        "customer stage less the two above",
    )
    add("terminal: decode enriched (pydantic)", decode_enriched_s, "timed alone")
    add(
        "terminal: accept into terminal windows",
        max(0.0, sec["terminal: decode enriched + accept"] - decode_enriched_s),
        "decode + accept less the above",
    )
    feat_note = "incl. feature-vector output" if settings.worker.emit_features else ""
    add("terminal: featurize", sec["terminal: featurize"], feat_note)
    score = sec["score: models + predictions"]
    add("score: ONNX deep model", deep_s, "timed alone")
    add("score: online model", online_s, "timed alone")
    add("score: reason codes", reasons_s, "timed alone")
    add("score: prediction encode (pydantic)", encode_pred_s, "timed alone")
    add(
        "score: rest (matrix, blend, Prediction objects)",
        max(0.0, score - deep_s - online_s - reasons_s - encode_pred_s),
        "scoring stage less the four above",
    )
    add("join: remember + expire", sec["join: remember + expire"])
    labels = sec["labels: apply + join"]
    add("labels: decode + validate (pydantic)", decode_labels_s, "timed alone; one label a tx")
    add(
        "labels: apply + join (LabeledExample out)",
        max(0.0, labels - decode_labels_s),
        "labels stage less the above",
    )
    add("changelog entries (json)", sec["changelog entries"], "every stage's state writes")
    total = sum(sec.values())
    profile = Profile(n_tx, rows, total)
    profile.rows.append(("total of the stages (CPU)", total / n_tx, f"wall {wall:.2f} s"))
    if cprofile:
        profile.cprofile = _cprofile(settings, models, messages, batch_size)
    return profile


def _cprofile(
    settings: StreamsSettings, models: ModelSet, messages: Messages, batch_size: int
) -> str:
    worker = InProcessWorker(settings, models)
    profiler = cProfile.Profile()
    profiler.enable()
    feed(worker, messages, batch_size)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


def profile_table(profile: Profile) -> Table:
    """The profile as a table: µs per transaction and share of the total."""
    table = Table(
        f"Stage profile per event (in process, {profile.transactions:,} transactions)",
        ["stage", "µs / transaction", "share", "how"],
    )
    total = profile.total_s / profile.transactions
    for name, seconds, note in profile.rows:
        share = f"{100 * seconds / total:.0f} %" if total else "-"
        table.add(name, us(seconds), share, note)
    return table
