"""Signing keys, signatures of document versions, and issuing documents with the seal."""
