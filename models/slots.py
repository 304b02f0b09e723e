"""The models a worker holds: champion (serves), challenger (shadow), previous (rollback).

All three live in one immutable :class:`SlotState`; every change builds a new state
and swaps the one reference, so a reader sees the state before a change or after
it, never a mix. The scoring stage takes :meth:`ModelSlots.snapshot` once per batch
and scores the whole batch with that snapshot's models: one batch, one champion
version, named on each of its predictions.

Lifecycle (each a single reference change):

- :meth:`~ModelSlots.stage`: a verified model enters shadow as challenger (replacing
  any challenger still in shadow);
- :meth:`~ModelSlots.promote`: challenger -> champion, champion -> previous;
- :meth:`~ModelSlots.reject`: the challenger is dropped;
- :meth:`~ModelSlots.install`: a verified model becomes champion directly (the first
  model, or an operator's promote of a model not in shadow);
- :meth:`~ModelSlots.rollback`: previous -> champion; the withdrawn champion is dropped.

Scorers are never mutated; one that leaves every slot is freed when the last batch
holding a snapshot of it finishes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from models.protocols import Scorer

__all__ = ["ModelSlots", "SlotError", "SlotState"]


class SlotError(RuntimeError):
    """A lifecycle step that the current state does not allow (the state is unchanged)."""


@dataclass(frozen=True)
class SlotState:
    """One consistent view of the slots; take it once per batch."""

    champion: Scorer | None = None
    """Serves: its scores are the ones decisions use."""
    challenger: Scorer | None = None
    """In shadow: scored and recorded, never used for decisions."""
    previous: Scorer | None = None
    """The champion before this one, kept loaded for instant rollback."""
    generation: int = 0
    """Counts changes; equal generations mean the same state."""

    @property
    def champion_version(self) -> str | None:
        """Version of the champion, if any."""
        return None if self.champion is None else self.champion.version

    @property
    def challenger_version(self) -> str | None:
        """Version of the challenger, if any."""
        return None if self.challenger is None else self.challenger.version

    @property
    def previous_version(self) -> str | None:
        """Version of the previous champion, if any."""
        return None if self.previous is None else self.previous.version


class ModelSlots:
    """Holder of a worker's models, changed only by whole-state swaps.

    Readers (:meth:`snapshot`) take no lock; writers serialize on one lock so two
    changes never interleave.

    Examples
    --------
    >>> class Fixed:
    ...     def __init__(self, version): self.version, self.feature_names = version, ("x",)
    ...     def score_batch(self, X): return X[:, 0]
    >>> slots = ModelSlots(Fixed("v1"))
    >>> _ = slots.stage(Fixed("v2"))
    >>> s = slots.snapshot()
    >>> s.champion_version, s.challenger_version
    ('v1', 'v2')
    >>> s = slots.promote("v2")
    >>> s.champion_version, s.challenger_version, s.previous_version
    ('v2', None, 'v1')
    >>> slots.rollback().champion_version
    'v1'
    """

    def __init__(self, champion: Scorer | None = None) -> None:
        self._state = SlotState(champion=champion)
        self._lock = threading.Lock()

    def snapshot(self) -> SlotState:
        """The current state (one reference read): score a whole batch with it."""
        return self._state

    def _swap(self, **changes: Scorer | None) -> SlotState:
        old = self._state
        new = SlotState(
            champion=changes.get("champion", old.champion),
            challenger=changes.get("challenger", old.challenger),
            previous=changes.get("previous", old.previous),
            generation=old.generation + 1,
        )
        self._state = new  # the one atomic reference change
        return new

    def stage(self, challenger: Scorer) -> SlotState:
        """Put a verified model in shadow."""
        with self._lock:
            if challenger.version == self._state.champion_version:
                raise SlotError(f"{challenger.version} is the champion already")
            return self._swap(challenger=challenger)

    def promote(self, version: str | None = None) -> SlotState:
        """Make the challenger champion; the champion becomes ``previous``.

        Raises
        ------
        SlotError
            No challenger, or it is not ``version`` (when given).
        """
        with self._lock:
            state = self._state
            if state.challenger is None:
                raise SlotError("no challenger to promote")
            if version is not None and state.challenger_version != version:
                raise SlotError(f"the challenger is {state.challenger_version}, not {version}")
            return self._swap(champion=state.challenger, challenger=None, previous=state.champion)

    def reject(self, version: str | None = None) -> Scorer:
        """Drop the challenger and return it.

        Raises
        ------
        SlotError
            No challenger, or it is not ``version`` (when given).
        """
        with self._lock:
            challenger = self._state.challenger
            if challenger is None or (version is not None and challenger.version != version):
                wanted = "" if version is None else f" {version}"
                raise SlotError(f"no challenger{wanted} to reject")
            self._swap(challenger=None)
            return challenger

    def install(self, champion: Scorer) -> SlotState:
        """Make a verified model champion now; the champion becomes ``previous``.

        A challenger of the same version leaves shadow; another challenger stays.
        """
        with self._lock:
            state = self._state
            if champion.version == state.champion_version:
                raise SlotError(f"{champion.version} is the champion already")
            challenger = None if state.challenger_version == champion.version else state.challenger
            return self._swap(champion=champion, challenger=challenger, previous=state.champion)

    def rollback(self, version: str | None = None) -> SlotState:
        """Serve the previous champion again; the withdrawn one is dropped.

        Raises
        ------
        SlotError
            No previous model is loaded, or it is not ``version`` (when given): load
            that version (verify it) and :meth:`install` it instead.
        """
        with self._lock:
            state = self._state
            if state.previous is None:
                raise SlotError("no previous model loaded")
            if version is not None and state.previous_version != version:
                raise SlotError(f"the previous model is {state.previous_version}, not {version}")
            return self._swap(champion=state.previous, previous=None)
