"""PAdES signing and validation for docsvc: key backends, appearances, development PKI.

This library never imports docsvc, FastAPI or the database layer."""
