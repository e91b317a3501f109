"""docsvc: the document management and digital-signing service (FastAPI app, domain, DB, jobs)."""
