"""One ``edgekit doctor`` finding (:class:`Check`: ok / warn / fail with the fix) and the report
they make (``doctor --json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def report(checks: list[Check]) -> dict:
    return {"checks": [c.to_dict() for c in checks], "ok": all(c.status != FAIL for c in checks)}
