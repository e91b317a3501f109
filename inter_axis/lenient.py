"""Lenient reading of edXML elements: by local name (either namespace, either ``Bussiness`` spelling),
stripping stray whitespace, accepting ``dd/MM/yyyy`` dates, and recording every problem as a warning
instead of failing.

An optional element that is present but empty (``<edXML:SteeringType/>``) is
such a problem when the reader wants a number, a boolean, a date or a timestamp from it: it warns
"empty optional element …" and goes on with the default. Empty free-text elements (``<edXML:Email/>``)
are not reported: the VNPT builder writes every organisation field, empty or not (VN-STANDARDS §1.4);
nor is an empty DueDate, which the format allows ("May be empty", §1.3) and our builder writes."""

from __future__ import annotations

import re
from datetime import date, datetime

from lxml import etree

from inter_axis.names import local_name

_SPELLINGS = {"Business": "Bussiness"}
_DATE_FORMATS = (("%Y/%m/%d", None), ("%d/%m/%Y", "dd/MM/yyyy"), ("%Y-%m-%d", "yyyy-MM-dd"))
_DATE_SHAPE = re.compile(r"^(\d{4}[/-]\d{1,2}[/-]\d{1,2}|\d{1,2}/\d{1,2}/\d{4})$")


def _canonical(name: str) -> str:
    for wrong, right in _SPELLINGS.items():
        if name.startswith(wrong):
            return right + name[len(wrong) :]
    return name


class LenientReader:
    """Accessors over lxml elements that collect warnings in :attr:`warnings`."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    @staticmethod
    def children(element: etree._Element | None, name: str) -> list[etree._Element]:
        """Child elements whose local name is ``name`` (``Business*`` also matches ``Bussiness*``)."""
        if element is None:
            return []
        return [child for child in element if _canonical(local_name(child.tag)) == name]

    def child(self, element: etree._Element | None, name: str) -> etree._Element | None:
        found = self.children(element, name)
        return found[0] if found else None

    def text(self, element: etree._Element | None, name: str, where: str, *, required: bool = False) -> str:
        """Stripped text of child ``name``; "" when absent or empty (a warning if ``required``)."""
        node = self.child(element, name)
        if node is None or not (node.text or "").strip():
            if required:
                self.warn(f"{where}/{name} is missing or empty")
            return ""
        raw = node.text
        value = raw.strip()
        if value != raw and len(node) == 0:
            self.warn(f"{where}/{name}: stray whitespace around the value was removed")
        return value

    def _empty_optional(self, element: etree._Element | None, name: str, where: str, fallback: str) -> None:
        """Warn when optional child ``name`` is present but empty: the reader substitutes ``fallback``,
        and a sender who meant a value should hear that none arrived (an absent element says nothing)."""
        node = self.child(element, name)
        if node is not None and not (node.text or "").strip() and len(node) == 0:
            self.warn(f"empty optional element {where}/{name}; read as {fallback}")

    def integer(self, element: etree._Element | None, name: str, where: str, default: int) -> int:
        value = self.text(element, name, where)
        if not value:
            self._empty_optional(element, name, where, str(default))
            return default
        try:
            return int(value)
        except ValueError:
            self.warn(f"{where}/{name}: {value!r} is not a number; using {default}")
            return default

    def boolean(self, element: etree._Element | None, name: str, where: str) -> bool | None:
        value = self.text(element, name, where).lower()
        if not value:
            self._empty_optional(element, name, where, "not given")
            return None
        if value in ("1", "true"):
            return True
        if value in ("0", "false"):
            return False
        self.warn(f"{where}/{name}: {value!r} is not a boolean")
        return None

    def parse_date(self, value: str, where: str) -> date | None:
        if not value:
            return None
        for fmt, label in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt).date()
            except ValueError:
                continue
            if label:
                self.warn(f"{where}: date {value!r} is written {label}, not yyyy/MM/dd")
            return parsed
        shape = "an impossible date" if _DATE_SHAPE.match(value) else "not a date"
        self.warn(f"{where}: {value!r} is {shape}; ignored")
        return None

    def date(self, element: etree._Element | None, name: str, where: str, *, required: bool = False,
             may_be_empty: bool = False) -> date | None:
        """``may_be_empty``: the format allows this element empty (DueDate, §1.3), so it is no problem."""
        value = self.text(element, name, where, required=required)
        if not value and not required and not may_be_empty:  # a required one was reported already
            self._empty_optional(element, name, where, "no date")
        return self.parse_date(value, f"{where}/{name}")

    def timestamp(self, element: etree._Element | None, name: str, where: str) -> datetime | None:
        value = self.text(element, name, where)
        if not value:
            self._empty_optional(element, name, where, "no timestamp")
            return None
        for fmt, label in (
            ("%Y/%m/%d %H:%M:%S", None),
            ("%d/%m/%Y %H:%M:%S", "dd/MM/yyyy HH:mm:ss"),
            ("%Y-%m-%dT%H:%M:%S", "ISO 8601"),
            ("%Y/%m/%d", "a date without a time"),
        ):
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            if label:
                self.warn(f"{where}/{name}: timestamp {value!r} is written as {label}, not yyyy/MM/dd HH:mm:ss")
            return parsed
        self.warn(f"{where}/{name}: {value!r} is not a valid timestamp (impossible date or time); ignored")
        return None
