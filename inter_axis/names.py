"""Namespace and element names of edXML, with the format's own spellings (``Bussiness``)."""

from __future__ import annotations

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
"""QCVN 102:2016 namespace: the root's default namespace and the ``edXML:`` prefix (VN-STANDARDS §1.2)."""
PREFIX = "edXML"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
#: Pre-2016 SOAP eDoc namespaces; a package in them is refused as ``wrong_namespace``.
LEGACY_NAMESPACES = ("http://www.e-doc.vn/Schema/", "http://www.go.vn/eDoc")


def q(local: str) -> str:
    """Clark name of an element in the edXML namespace."""
    return f"{{{NS}}}{local}"


def local_name(tag: object) -> str:
    """Local part of an lxml tag (comments and processing instructions give "")."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def namespace_of(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""
