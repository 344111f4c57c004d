"""What a check concludes: a pass with a note, or a :class:`CheckFailure` with a message."""
from __future__ import annotations

from dataclasses import dataclass, field


class CheckFailure(AssertionError):
    """A check failed; the message says what is wrong in the student's terms."""


@dataclass
class Verdict:
    """The outcome of one check, as the checker recorded it (plain data).

    ``kind`` is ``passed``, ``failed``, ``checker-error`` (the check itself failed) or, when the
    student's process had to be stopped,
    ``timeout``, ``memory``, ``crashed`` or ``protocol``. ``printed`` is what the student's own
    code printed while the check called it."""

    spec: str
    kind: str
    message: str
    printed: str = ""
    seconds: float = 0.0
    params: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.kind == "passed"

    def to_json(self) -> dict:
        return {"spec": self.spec, "kind": self.kind, "message": self.message, "printed": self.printed,
                "seconds": round(self.seconds, 4), "params": self.params}

    @classmethod
    def from_json(cls, data: dict) -> "Verdict":
        return cls(**{k: data[k] for k in ("spec", "kind", "message", "printed", "seconds", "params") if k in data})
