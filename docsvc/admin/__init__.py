"""Operator endpoints: health, background-job runs (reconcile)."""
