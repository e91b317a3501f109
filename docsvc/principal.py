"""Who is acting: a person, a system client, or docsvc itself (jobs, CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    CLERK = "clerk"  # văn thư
    SPECIALIST = "specialist"  # chuyên viên
    LEADER = "leader"  # lãnh đạo
    ARCHIVIST = "archivist"  # lưu trữ
    ADMIN = "admin"


@dataclass(frozen=True)
class Actor:
    """The identity recorded in audit events and checked by services."""

    kind: str
    """``user``, ``system`` (an API client) or ``service`` (docsvc's own jobs and CLI)."""
    id: int | None
    name: str
    organisation_id: int | None
    roles: frozenset[str] = field(default_factory=frozenset)

    def has_any(self, *roles: Role) -> bool:
        return any(r.value in self.roles for r in roles)


SERVICE_ACTOR = Actor(kind="service", id=None, name="docsvc", organisation_id=None)
