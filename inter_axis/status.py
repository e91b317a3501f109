"""Status messages (gói tin trạng thái, VN-STANDARDS §1.9): build with the ``edXML:MessageHeader`` wrapper
the official sample uses (child order From, ResponseFor, StaffInfo, StatusCode, Description, Timestamp);
parse either wrapper (``MessageHeader`` or ``Status``) through :func:`inter_axis.parse.read_package`."""

from __future__ import annotations

from typing import BinaryIO

from lxml import etree

from inter_axis.build import _sub, _timestamp, add_organization, add_response_for, add_staff, add_traces, new_root
from inter_axis.errors import InvalidPackageError
from inter_axis.model import StatusMessage
from inter_axis.serialize import serialize_tree
from inter_axis.validate import validate_status


def build_status_tree(status: StatusMessage) -> etree._Element:
    """The status message as a tree (no body, no attachments)."""
    root, _envelope, header = new_root()
    message = _sub(header, "MessageHeader")
    add_organization(message, "From", status.from_org)
    add_response_for(message, status.response_for)
    if status.staff is not None:
        add_staff(message, status.staff, status_order=True)
    _sub(message, "StatusCode", status.status_code)
    _sub(message, "Description", status.description)
    _sub(message, "Timestamp", _timestamp(status.timestamp))
    if status.traces:
        add_traces(_sub(header, "TraceHeaderList"), status.traces)
    etree.indent(root, "  ")
    return root


def write_status(status: StatusMessage, out: BinaryIO) -> int:
    """Validate and write a status message; :class:`InvalidPackageError` lists every problem."""
    problems = validate_status(status)
    if problems:
        raise InvalidPackageError("; ".join(problems))
    data = serialize_tree(build_status_tree(status))
    out.write(data)
    return len(data)
