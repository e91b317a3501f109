"""Dossiers (hồ sơ): work files and administrative-procedure dossiers with their results."""
