"""Stamping the registered number and date (số, ký hiệu, ngày ban hành) into a PDF at issue time.

The leader signs before the clerk registers the number, so stamping must be a change that
pyHanko's difference policy permits after an approval signature. Annotations are not (pyHanko
treats any new annotation as an unexplained change), but filling form fields is (FORM_FILLING).
So: before a person signs a not-yet-issued version, :func:`add_registration_fields` adds two
empty, read-only text fields (:data:`NUMBER_FIELD`, :data:`DATE_FIELD`) in an unsigned update;
at issue time :func:`fill_in` sets their values and appearance streams (drawn with the embedded
Vietnamese font) in the seal's own revision, so the seal covers them."""

from __future__ import annotations

import unicodedata
from typing import BinaryIO

from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.stamp import TextStamp

from signing.appearance import stamp_style
from signing.interfaces import AppearanceSpec
from signing.pades import open_writer

NUMBER_FIELD = "docsvc_so_ky_hieu"
"""Text field for "Số: 12/QĐ-UBND"."""
DATE_FIELD = "docsvc_ngay_ban_hanh"
"""Text field for "Nghệ An, ngày 23 tháng 11 năm 2026"."""

#: Decree 30 layout, first page: number under the organ name (left), place and date under the
#: national motto (right). PDF points, origin bottom left of an A4/Letter page.
FIELD_BOXES = {
    NUMBER_FIELD: (56.0, 700.0, 276.0, 722.0),
    DATE_FIELD: (300.0, 700.0, 560.0, 722.0),
}
_READ_ONLY = 1
_PRINT = 4


def _fields(writer: IncrementalPdfFileWriter) -> dict[str, generic.IndirectObject]:
    form = writer.root.get("/AcroForm")
    if form is None:
        return {}
    found = {}
    for ref in form.get_object().get("/Fields", generic.ArrayObject()):
        field = ref.get_object()
        name = field.get("/T")
        if name is not None:
            found[str(name)] = ref
    return found


def has_registration_fields(source: BinaryIO) -> bool:
    """Whether the PDF already carries both registration fields."""
    writer = open_writer(source)
    return set(FIELD_BOXES) <= set(_fields(writer))


def add_registration_fields(source: BinaryIO, output: BinaryIO, page: int = 0) -> None:
    """Write ``source`` plus an incremental update adding the two empty registration fields."""
    writer = open_writer(source)
    existing = _fields(writer)
    page_ref = writer.find_page_for_modification(page)[0]
    page_obj = page_ref.get_object()
    root = writer.root
    form = root.get("/AcroForm")
    if form is None:
        form = generic.DictionaryObject({pdf_name("/Fields"): generic.ArrayObject()})
        root[pdf_name("/AcroForm")] = writer.add_object(form)
        writer.update_root()
    form = form.get_object()
    new_refs = []
    for name, box in FIELD_BOXES.items():
        if name in existing:
            continue
        empty = generic.StreamObject({pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Form"),
                                      pdf_name("/BBox"): generic.ArrayObject([generic.FloatObject(0),
                                                                              generic.FloatObject(0),
                                                                              generic.FloatObject(box[2] - box[0]),
                                                                              generic.FloatObject(box[3] - box[1])])},
                                     stream_data=b"")
        field = generic.DictionaryObject({
            pdf_name("/FT"): pdf_name("/Tx"),
            pdf_name("/T"): pdf_string(name),
            pdf_name("/Ff"): generic.NumberObject(_READ_ONLY),
            pdf_name("/V"): pdf_string(""),
            pdf_name("/DA"): pdf_string("/Helv 10 Tf 0 g"),
            pdf_name("/Type"): pdf_name("/Annot"),
            pdf_name("/Subtype"): pdf_name("/Widget"),
            pdf_name("/Rect"): generic.ArrayObject([generic.FloatObject(v) for v in box]),
            pdf_name("/F"): generic.NumberObject(_PRINT),
            pdf_name("/P"): page_ref,
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): writer.add_object(empty)}),
        })
        new_refs.append(writer.add_object(field))
    if not new_refs:
        writer.write(output)
        return
    fields = form.get("/Fields")
    if fields is None:
        form[pdf_name("/Fields")] = generic.ArrayObject(new_refs)
    else:
        fields.get_object().extend(new_refs)
        if isinstance(form.raw_get("/Fields"), generic.IndirectObject):
            writer.update_container(form.raw_get("/Fields"))
    writer.update_container(form)
    annots = page_obj.get("/Annots")
    if annots is None:
        page_obj[pdf_name("/Annots")] = generic.ArrayObject(new_refs)
    else:
        annots.get_object().extend(new_refs)
        if isinstance(page_obj.raw_get("/Annots"), generic.IndirectObject):
            writer.update_container(page_obj.raw_get("/Annots"))
    writer.update_container(page_obj)
    writer.write(output)


def fill_in(writer: IncrementalPdfFileWriter, values: dict[str, str]) -> None:
    """Set the registration fields' values and appearances in ``writer``'s pending revision (the
    issuing seal passes this to ``signing.pades.sign_pdf(prepare=…)``, so it covers them)."""
    fields = _fields(writer)
    missing = set(values) - set(fields)
    if missing:
        raise ValueError(f"the PDF has no field {', '.join(sorted(missing))}")
    for name, text in values.items():
        text = unicodedata.normalize("NFC", text)
        ref = fields[name]
        field = ref.get_object()
        x1, y1, x2, y2 = (float(v) for v in field["/Rect"])
        spec = AppearanceSpec(box=(x1, y1, x2, y2), lines=(text,), font_size=10.0, border_width=0)
        stamp = TextStamp(writer, stamp_style(spec), box=layout.BoxConstraints(width=x2 - x1, height=y2 - y1))
        field[pdf_name("/V")] = pdf_string(text)
        field[pdf_name("/AP")] = generic.DictionaryObject({pdf_name("/N"): stamp.register()})
        writer.update_container(field)
