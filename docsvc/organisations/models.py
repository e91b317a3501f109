from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from docsvc.db.base import Base, utcnow


class Organisation(Base):
    """An agency: UBND tỉnh, a sở, a UBND huyện or xã. ``organ_id`` is its mã định danh."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    organ_id: Mapped[str] = mapped_column(String(35), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    short_name: Mapped[str] = mapped_column(String(20))
    """Abbreviation used in document symbols, e.g. ``UBND`` or ``STTTT``."""
    level: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
