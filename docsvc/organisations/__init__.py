"""Organisations (agencies) with their QCVN 102 electronic identifier and hierarchy."""
