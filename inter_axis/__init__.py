"""edXML (QCVN 102:2016) packages for the national document interlink axis: model, build, lenient parse,
validation, streamed attachments and the enveloped XML-DSig.

Never imports docsvc, FastAPI or a database (house rule)."""
