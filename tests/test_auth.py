"""Signing in: passwords, TOTP second factor, lockout, logout, API keys, role checks."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import func, select

from docsvc.audit.models import AuditEvent
from tests.support.factories import PASSWORD, enrol_totp, login


def _token(client, username, password=PASSWORD, otp=None):
    data = {"username": username, "password": password}
    if otp is not None:
        data["otp"] = otp
    return client.post("/auth/token", data=data)


def test_password_login_gives_a_token_that_identifies_the_user(client, province):
    response = _token(client, "vanthu")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "vanthu"
    assert me.json()["roles"] == ["clerk"]


@pytest.mark.parametrize("username,password", [("vanthu", "wrong password"), ("nobody", PASSWORD)])
def test_wrong_credentials_are_refused_with_the_same_error(client, province, username, password):
    response = _token(client, username, password)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response.json()["error"]["message"] == "incorrect username or password"


def test_requests_without_or_with_a_forged_token_are_refused(client, province):
    assert client.get("/documents").json()["error"]["code"] == "authentication_failed"
    forged = client.get("/documents", headers={"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"})
    assert forged.status_code == 401


def test_account_locks_after_repeated_failures_even_for_the_right_password(client, province):
    for _ in range(client.runtime.settings.auth.max_failed_logins - 1):
        assert _token(client, "chuyenvien", "nope nope nope").status_code == 401
    locked = _token(client, "chuyenvien", "nope nope nope")
    assert locked.status_code == 423
    assert locked.json()["error"]["code"] == "account_locked"
    assert _token(client, "chuyenvien").status_code == 423
    with client.runtime.sessions() as session:
        failures = session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.action == "auth.login_failed"))
    assert failures == client.runtime.settings.auth.max_failed_logins


def test_a_successful_login_resets_the_failure_count(client, province):
    for _ in range(client.runtime.settings.auth.max_failed_logins - 1):
        _token(client, "luutru", "bad bad bad bad")
    assert _token(client, "luutru").status_code == 200
    assert _token(client, "luutru", "bad bad bad bad").status_code == 401  # not locked


def test_totp_enrolment_then_login_needs_the_current_code(client, province):
    leader = province["leader"]
    secret = enrol_totp(client, leader)
    missing = _token(client, "lanhdao")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "otp_required"
    wrong = _token(client, "lanhdao", otp="000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "incorrect one-time code"
    totp = pyotp.TOTP(secret)
    next_code = totp.at(totp.timecode(__import__("datetime").datetime.now()) * totp.interval + totp.interval)
    assert _token(client, "lanhdao", otp=next_code).status_code == 200


def test_a_totp_code_cannot_be_replayed(client, province):
    leader = province["leader"]
    enrol_totp(client, leader)  # uses a code once
    replay = _token(client, "lanhdao", otp=leader.last_totp_code)
    assert replay.status_code == 401


def test_enrolment_confirmation_with_a_wrong_code_leaves_totp_off(client, province):
    clerk = province["clerk"]
    client.post("/auth/totp/enrol", headers=clerk.headers)
    bad = client.post("/auth/totp/confirm", json={"code": "12345"}, headers=clerk.headers)
    assert bad.status_code == 422  # not six digits
    assert client.get("/auth/me", headers=clerk.headers).json()["totp_enabled"] is False
    assert _token(client, "vanthu").status_code == 200  # still no second factor demanded


def test_logout_revokes_the_token(client, province):
    token = login(client, "vanthu")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/auth/me", headers=headers).status_code == 200
    assert client.post("/auth/logout", headers=headers).status_code == 204
    after = client.get("/auth/me", headers=headers)
    assert after.status_code == 401 and after.json()["error"]["code"] == "authentication_failed"


def test_expired_tokens_are_refused(client, province):
    from docsvc.users import security

    token, _ = security.issue_token(client.runtime.settings.signing_secret(), province["clerk"].id, minutes=-1)
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_api_key_is_shown_once_stored_hashed_and_authenticates_a_system_client(client, province):
    admin = province["admin"]
    created = client.post("/api-clients", json={"name": "Cổng dịch vụ công tỉnh", "organisation_id": province.root},
                          headers=admin.headers)
    assert created.status_code == 201
    key = created.json()["api_key"]
    from docsvc.users.models import ApiClient

    with client.runtime.sessions() as session:
        stored = session.scalar(select(ApiClient))
        assert key not in (stored.key_hash, stored.key_prefix) and len(stored.key_hash) == 64
    who = client.get("/auth/whoami", headers={"X-API-Key": key})
    assert who.json() == {"kind": "system", "id": stored.id, "name": "Cổng dịch vụ công tỉnh",
                          "organisation_id": province.root, "roles": ["system"]}
    assert client.get("/auth/whoami", headers={"X-API-Key": key + "x"}).status_code == 401
    # A system client is not a person: person-only endpoints refuse it.
    assert client.get("/auth/me", headers={"X-API-Key": key}).status_code == 403


def test_only_admins_create_users_and_only_below_their_own_organisation(client, province):
    body = {"username": "moi", "full_name": "Người Mới", "organisation_id": province.dept, "roles": ["clerk"]}
    by_clerk = client.post("/users", json=body, headers=province["clerk"].headers)
    assert by_clerk.status_code == 403 and by_clerk.json()["error"]["code"] == "permission_denied"
    by_district_admin = client.post("/users", json=body, headers=province["district_admin"].headers)
    assert by_district_admin.status_code == 404  # the department is not in the district's subtree
    created = client.post("/users", json=body, headers=province["admin"].headers)
    assert created.status_code == 201
    password = created.json()["initial_password"]
    assert password and _token(client, "moi", password).status_code == 200
    again = client.post("/users", json=body, headers=province["admin"].headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_user_creation_rejects_unknown_roles_and_bad_usernames(client, province):
    admin = province["admin"]
    bad_role = client.post("/users", json={"username": "x.y", "full_name": "X", "organisation_id": province.dept,
                                           "roles": ["superuser"]}, headers=admin.headers)
    assert bad_role.status_code == 422 and bad_role.json()["error"]["code"] == "validation_failed"
    bad_name = client.post("/users", json={"username": "Có Dấu", "full_name": "X", "organisation_id": province.dept,
                                           "roles": ["clerk"]}, headers=admin.headers)
    assert bad_name.status_code == 422
