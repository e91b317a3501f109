"""Errors of the inter_axis library. Each carries a stable ``code`` callers map to their own responses.

"The package could not be read" is an exception; "the signature does not verify" is a result
(:class:`inter_axis.xmldsig.SignatureCheck`), as in the signing library."""

from __future__ import annotations


class EdxmlError(Exception):
    """Root of every error raised by inter_axis; ``code`` is stable and machine-readable."""

    code: str = "edxml_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class MalformedXmlError(EdxmlError):
    """Not well-formed XML, or not the edXML skeleton at all."""

    code = "malformed_xml"


class HostileXmlError(EdxmlError):
    """A DTD, entity declaration or external reference: refused before anything is expanded."""

    code = "hostile_xml"


class OversizeError(EdxmlError):
    """The package (or its header) is larger than the caller allows."""

    code = "oversize"


class WrongNamespaceError(EdxmlError):
    """The root is not in the QCVN 102:2016 namespace (e.g. the legacy e-doc.vn SOAP namespace)."""

    code = "wrong_namespace"


class MissingFieldError(EdxmlError):
    """A field without which the package cannot be used (DocumentId, From/OrganId, StatusCode…) is absent."""

    code = "missing_field"


class UnknownStatusCodeError(EdxmlError):
    """A status message's StatusCode is not one of the known two-digit codes (01-06, 13, 15, 16).

    Refused rather than read with a warning: the code is what the receiver acts on and stores (as
    two characters), and "003" or "999" means nothing it could act on."""

    code = "unknown_status_code"


class MissingAttachmentError(EdxmlError):
    """The manifest names an attachment the package does not carry."""

    code = "missing_attachment"


class InvalidPackageError(EdxmlError):
    """A package we were asked to build breaks the format's rules (see :mod:`inter_axis.validate`)."""

    code = "invalid_package"


class BadSignatureError(EdxmlError):
    """Signing or verification could not be carried out (unusable key/certificate, unsupported algorithm)."""

    code = "bad_signature"
