"""Validation of identifiers: agency codes (mã định danh) and applicant ids."""

from __future__ import annotations

import re

from docsvc import errors

#: QCVN 102:2016 layout used on the axis today, e.g. ``000.00.00.H41``.
AXIS_ORGAN_ID = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
#: QĐ 20/2020 layout: level-1 group first, groups of ``0-9A-Z`` separated by dots, ≤ 35 chars.
QD20_ORGAN_ID = re.compile(r"^[A-Z]\d{2}(\.[0-9A-Z]+)*$")
PERSONAL_ID = re.compile(r"^\d{12}$")
#: Mã số thuế: 10 digits, or 10 + "-" + 3 digits for a branch.
TAX_CODE = re.compile(r"^\d{10}(-\d{3})?$")


def validate_organ_id(value: str) -> str:
    if len(value) <= 35 and (AXIS_ORGAN_ID.match(value) or QD20_ORGAN_ID.match(value)):
        return value
    raise errors.InvalidIdentifierError(
        "organ_id must look like 000.00.00.H41 (QCVN 102) or H41.12 (QĐ 20/2020)", field="organ_id", value=value
    )


def validate_personal_id(value: str) -> str:
    """A 12-digit số định danh cá nhân; its first three digits are the birth-registration province."""
    if not PERSONAL_ID.match(value):
        raise errors.InvalidIdentifierError("personal id must be exactly 12 digits", field="applicant_id")
    return value


def validate_tax_code(value: str) -> str:
    if not TAX_CODE.match(value):
        raise errors.InvalidIdentifierError("tax code must be 10 digits, or 10-3 for a branch", field="applicant_id")
    return value
