"""Signature validation for users: the public upload endpoint, stored versions, ``docsvc verify``."""
