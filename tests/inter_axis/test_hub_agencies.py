"""The agencies file: the hub's source of truth for who may connect (secrets kept as SHA-256)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from docsvc.axis_hub.service import hash_secret
from inter_axis.transport import TransportError, new_idempotency_key
from tests.support.axis_hub import DEPARTMENT, EXAMPLES, GOVERNMENT, PROVINCE, document_package, new_hub


def test_the_file_holds_only_hashes_of_the_secrets(tmp_path: Path):
    hub = new_hub(tmp_path)
    text = hub.agencies_file.read_text()
    for organ_id, secret in hub.secrets.items():
        assert secret not in text
        assert hash_secret(secret) in text
        assert len(secret) >= 40, organ_id


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/standards/examples is not beside the checkout")
def test_an_agency_removed_from_the_file_is_locked_out_at_the_next_start(tmp_path: Path):
    hub = new_hub(tmp_path).start()
    try:
        assert [a.organ_id for a in hub.client(DEPARTMENT).list_agencies()] == sorted(
            [PROVINCE, DEPARTMENT, GOVERNMENT]
        )
        data = json.loads(hub.agencies_file.read_text())
        data["agencies"] = [a for a in data["agencies"] if a["organ_id"] != DEPARTMENT]
        hub.agencies_file.write_text(json.dumps(data))
        hub.stop()
        hub.start()
        with pytest.raises(TransportError) as info:
            hub.client(DEPARTMENT).list_agencies()
        assert info.value.code == "unauthorized"
        package = document_package(tmp_path / "doc.edxml", recipients=(DEPARTMENT,))
        with pytest.raises(TransportError) as info:
            hub.client(PROVINCE).send(package, idempotency_key=new_idempotency_key())
        assert info.value.code == "unknown_recipient"
    finally:
        hub.stop()


def test_a_bad_agencies_file_stops_the_hub_with_a_message(tmp_path: Path):
    bad = tmp_path / "agencies.json"
    bad.write_text(json.dumps({"agencies": [{"organ_id": "not-an-id", "name": "x", "secret_sha256": "0" * 64}]}))
    result = subprocess.run(
        [sys.executable, "-m", "docsvc.axis_hub", "--data-dir", str(tmp_path / "hub"), "--agencies-file", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "'not-an-id' is not an agency identifier" in result.stderr
