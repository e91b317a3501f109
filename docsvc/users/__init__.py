"""People (with roles, passwords, TOTP) and system clients (API keys); authentication."""
