"""The development PKI's default keys for the command line: the demo organisation's seal and a
demo leader's personal key, so ``docsvc pki init && docsvc sign in.pdf out.pdf`` works on a
fresh data directory. Kept as PKCS#12 in ``<pki>/defaults/`` under the server-held passphrase."""

from __future__ import annotations

from pathlib import Path

from docsvc.pki import keystore
from docsvc.pki.service import ensure_dev_pki
from docsvc.settings import Settings
from signing.devpki import DevPki
from signing.keys import FileKeyBackend

DEMO_LEADER = ("Nguyễn Văn An", "001090000001", "Chủ tịch")
"""Full name, personal ID (CCCD) and position of the default personal key."""
_FILES = {"organisation": "organisation-seal.p12", "personal": "leader-personal.p12"}
_PASS_LABEL = "cli-defaults"


def _path(settings: Settings, which: str) -> Path:
    return settings.pki_path / "defaults" / _FILES[which]


def ensure_default_keys(settings: Settings, pki: DevPki | None = None) -> dict[str, Path]:
    """Issue the default seal and personal key once (idempotent); returns their PKCS#12 paths."""
    pki = pki or ensure_dev_pki(settings)
    passphrase = keystore.seal_passphrase(settings, _PASS_LABEL)
    paths = {}
    for which in _FILES:
        path = _path(settings, which)
        if not path.exists():
            if which == "organisation":
                issued = pki.issue_seal(settings.root_organisation_name, settings.root_organ_id)
            else:
                name, personal_id, position = DEMO_LEADER
                issued = pki.issue_personal(name, personal_id, settings.root_organisation_name, position=position)
            data = issued.to_pkcs12(passphrase)
            issued.key_path.unlink(missing_ok=True)  # keep only the encrypted copy
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.chmod(0o600)
            tmp.replace(path)
        paths[which] = path
    return paths


def default_key(settings: Settings, profile: str) -> FileKeyBackend:
    """The default key for ``profile``: the seal for organisation/attachment/copy, else the leader's."""
    which = "personal" if profile == "personal" else "organisation"
    path = ensure_default_keys(settings)[which]
    return FileKeyBackend.from_pkcs12(path, keystore.seal_passphrase(settings, _PASS_LABEL))
