"""The small contracts of the signing library: a key backend, and the specs callers fill in.

Specs are frozen dataclasses with every field documented, as pyHanko's own
``PdfSignatureMetadata``; they never carry configuration objects of the application."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from asn1crypto import x509
from pyhanko.sign.signers.pdf_cms import Signer

PadesLevel = Literal["B-B", "B-T", "B-LT", "B-LTA"]
PADES_LEVELS: tuple[PadesLevel, ...] = ("B-B", "B-T", "B-LT", "B-LTA")

NOTO_SERIF = "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf"


@runtime_checkable
class KeyBackend(Protocol):
    """A signing key and its certificate, wherever the key lives (file, token, remote service).

    ``signer()`` serves one-phase signing through pyHanko; ``sign_digest`` serves two-phase and
    remote flows, where only a digest travels to the key."""

    @property
    def certificate(self) -> x509.Certificate:
        """The signer's certificate."""
        ...

    @property
    def chain(self) -> Sequence[x509.Certificate]:
        """Issuing CA certificates to embed, signer's issuer first; the root may be included."""
        ...

    def signer(self) -> Signer:
        """A pyHanko ``Signer`` for this key, ready for ``PdfSigner``."""
        ...

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        """The raw signature value (RSA PKCS#1 v1.5, or DER-encoded ECDSA) over a precomputed
        ``digest`` made with ``digest_algorithm`` (e.g. ``"sha256"``)."""
        ...


@dataclass(frozen=True)
class AppearanceSpec:
    """A visible signature box: a rectangle on one page, holding text lines and an optional
    image, each in its own area of the box. Vietnamese text needs an embedded Unicode font (Noto
    Serif by default). ``signing.profiles`` fills these in for the Decree 30/2020 appearances."""

    page: int = 0
    """Zero-based page index; negative values count from the end (-1 is the last page)."""

    box: tuple[float, float, float, float] = (350.0, 60.0, 560.0, 140.0)
    """The rectangle ``(x1, y1, x2, y2)`` in PDF points, origin at the bottom left of the page."""

    lines: tuple[str, ...] = ()
    """Text lines of the stamp. Empty means a default: signer name, organisation, signing time.
    Placeholders ``%(signer)s`` (certificate common name) and ``%(ts)s`` (signing time) are
    filled in by pyHanko; ``%(org)s`` by us from the certificate's organisation."""

    font_path: str | None = NOTO_SERIF
    """A TrueType font to embed, cut down to Vietnamese once per process. Required to draw text."""

    font_size: float = 9.0
    """Font size in points."""

    image_path: str | None = None
    """A PNG/JPEG (transparency kept) drawn in ``image_box`` (a seal, a signature), or ``None``."""

    border_width: int = 1
    """Border line width in points; 0 for none."""

    border_color: tuple[float, float, float] | None = None
    """Border colour as RGB in 0..1; ``None`` is black."""

    image_box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    """Where the image goes, as fractions ``(x1, y1, x2, y2)`` of the box; the image keeps its
    aspect ratio and is centred in this area."""

    text_box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    """Where the text lines go, as fractions ``(x1, y1, x2, y2)`` of the box; the block of lines
    is centred vertically in it."""

    draw_text: bool = True
    """Draw text lines at all; ``False`` for an image-only appearance (a seal)."""

    text_align: Literal["left", "center", "right"] = "left"
    """Horizontal alignment of each line in the text area."""

    text_color: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Text colour as RGB in 0..1."""

    line_spacing: float = 1.2
    """Distance between baselines as a multiple of the font size."""

    padding: float = 2.0
    """Inner margin of the text area, in points."""

    fit_text: bool = False
    """Shrink the font below ``font_size`` where needed so every line fits the text area."""


@dataclass(frozen=True)
class SignatureSpec:
    """What to sign and how: the PAdES baseline level, the field, the visible appearance and
    whether the signature certifies or locks the document."""

    level: PadesLevel = "B-B"
    """PAdES baseline level. B-T needs a timestamper; B-LT and B-LTA also need a validation
    context able to fetch revocation information for the signer and the TSA."""

    field_name: str | None = None
    """Name of the signature field; ``None`` picks an unused ``Signature<N>``."""

    reason: str | None = None
    """The /Reason entry of the signature dictionary."""

    location: str | None = None
    """The /Location entry (place of signing)."""

    contact: str | None = None
    """The /ContactInfo entry."""

    name: str | None = None
    """The /Name entry; ``None`` leaves it to the certificate."""

    certify: bool = False
    """Make this a certification (DocMDP) signature. Only the first signature of a document can
    certify; later changes are then judged against ``docmdp_permission``. To lock a document at
    the end of a chain of signatures, use ``lock`` on the last one instead."""

    docmdp_permission: Literal["no_changes", "fill_forms", "annotate"] = "fill_forms"
    """What a certification signature still allows afterwards: nothing (locks the document,
    no further signatures), form filling and signing, or that plus annotations."""

    lock: bool = False
    """Lock the document with this signature, whichever position it has in the chain (the
    organisation's seal after the specialist's initials and the leader's signature): the field
    gets a lock dictionary ``/Lock << /Action /All /P 1 >>`` (every field locked, and the PDF 2.0
    DocMDP value "no changes"). Earlier signatures stay valid; afterwards only validation data
    (DSS) and document timestamps may be added, so B-LT/B-LTA still work, and ``signing.pades``
    refuses to sign the locked document again. With ``certify`` it needs ``docmdp_permission``
    ``"no_changes"`` (anything else contradicts the lock)."""

    appearance: AppearanceSpec | None = None
    """A visible appearance, or ``None`` for an invisible signature."""

    bytes_reserved: int | None = None
    """Bytes reserved for the CMS blob (hex doubles it in the file); ``None`` picks a margin per
    level, so pyHanko never has to sign twice to measure."""

    md_algorithm: str = "sha256"
    """Digest algorithm of the document and the signed attributes."""

