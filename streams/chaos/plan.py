"""One planned record of a fault run: what is published and the outcome it must have."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Planned:
    """One record to publish and the outcome it must have.

    ``role`` is the topic role (``transactions`` or ``labels``). ``kind`` is
    ``valid`` (a transaction that must get exactly one prediction), ``label``, or the
    poison kind. ``expected`` None means a prediction (valid) or nothing (a label);
    otherwise the dead-letter reason the record must be routed with.
    """

    index: int
    role: str
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    ident: str
    kind: str
    customer: str | None = None
    sequence: int | None = None
    expected: str | None = None

    def at(self, index: int) -> Planned:
        """The same record at another place in the plan."""
        return self if index == self.index else replace(self, index=index)
