"""The development PKI served by docsvc (TSA, OCSP, CRLs, CA certificates) and signing keys."""
