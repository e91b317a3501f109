"""The one place configuration is read: ``Settings`` (environment prefix ``DOCSVC_``, nested
keys joined with ``__``). Read once at start-up by ``get_settings`` and passed into factories;
nothing reads the environment at import time."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Values that must never reach production: they appear in docs, examples and compose files.
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "password", "minioadmin", "dev"}


class ObjectStoreSettings(BaseModel):
    """Where file contents live: a local directory (embedded) or an S3 bucket (production)."""

    kind: Literal["filesystem", "s3"] = "filesystem"
    path: Path | None = None
    """Filesystem store root; defaults to ``<data_dir>/objects``."""
    endpoint: str | None = None
    """S3 endpoint as ``host:port`` (no scheme)."""
    access_key: str | None = None
    secret_key: SecretStr | None = None
    bucket: str = "docsvc"
    secure: bool = True
    """Use TLS to reach the S3 endpoint."""
    region: str | None = None


class AuthSettings(BaseModel):
    """Token lifetime and brute-force limits."""

    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    max_failed_logins: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    totp_issuer: str = "docsvc"
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=1024)
    """RFC 9106's second recommended option (t=3, 64 MiB); tests lower both to run fast.
    Existing hashes keep verifying after a change: their parameters are stored in them."""


class JobSettings(BaseModel):
    """How the outbox relay treats jobs that were sent but never reported done."""

    redeliver_after_seconds: int = Field(default=35 * 60, ge=1)
    """Send a job again if no worker finished it this long after it was sent (a broker lost
    it, or a worker was killed). Longer than the task time limit, so a slow run is not doubled."""
    max_attempts: int = Field(default=5, ge=1)
    """Stop re-sending a job that keeps failing; it stays visible as pending in the outbox."""


class SigningSettings(BaseModel):
    """PAdES signing and validation: the development PKI, production trust, the public validator."""

    pki_dir: Path | None = None
    """Development PKI directory; defaults to ``<data_dir>/pki`` (created by ``docsvc pki init``
    and on the first ``docsvc serve``)."""
    public_base_url: str = "http://127.0.0.1:8000"
    """Where this service is reached; the development PKI puts ``<url>/pki/...`` (OCSP, CRL,
    TSA, CA certificates) into the certificates it issues."""
    use_dev_pki: bool = True
    """Trust the development PKI's root and use its TSA/OCSP. Production sets this to false and
    gives ``trust_roots`` and ``tsa_url``."""
    trust_roots: list[Path] = []
    """PEM or DER files of trusted root certificates (production)."""
    tsa_url: str | None = None
    """RFC 3161 timestamp authority (production)."""
    tsa_username: str | None = None
    tsa_password: SecretStr | None = None
    fetch_revocation: bool = True
    """Fetch OCSP/CRL answers online when validating or collecting B-LT data."""
    revocation_cache_dir: Path | None = None
    """Fetched OCSP/CRL answers are cached here; defaults to ``<data_dir>/revocation-cache``."""
    revocation_cache_seconds: int = Field(default=3600, ge=0)
    issue_level: Literal["B-B", "B-T", "B-LT", "B-LTA"] = "B-LTA"
    """PAdES level of the organisation's signature when a document is issued."""
    max_validation_upload_bytes: int = Field(default=50 * 1024**2, ge=1)
    """Largest PDF the public validation endpoint accepts."""
    validation_rate_per_minute: int = Field(default=30, ge=1)
    """Public validation requests allowed per client address and minute."""
    pkcs11_module: str | None = None
    """PKCS#11 module of the HSM holding the organisations' seal keys (e.g.
    ``/usr/lib/softhsm/libsofthsm2.so``). Set, each organisation's seal is the token's private key
    and certificate labelled with its mã định danh, and never leaves the token; ``None`` keeps seals
    as server-encrypted PKCS#12 issued by the development PKI."""
    pkcs11_token_label: str | None = None
    """Token label in that module."""
    pkcs11_pin: SecretStr | None = None
    """User PIN of that token."""
    pin_max_failures: int = Field(default=5, ge=1)
    """Wrong PINs in a row that lock a signing key."""
    pin_lockout_minutes: int = Field(default=15, ge=1)
    """How long a locked signing key stays locked."""


class AxisSettings(BaseModel):
    """The national document interlink axis (Trục liên thông văn bản quốc gia).

    One docsvc serves many organisations of a province; each is its own agency on the axis and
    authenticates with its own secret: ``credentials`` maps OrganId → secret. ``agency_id`` with
    ``client_secret`` is the single-agency shorthand (merged into ``credentials``). Organisations
    without a credential neither send nor receive over the axis."""

    endpoint: str | None = None
    """Base URL of the axis (or of a ``docsvc axis-hub``); ``None`` disables external exchange."""
    agency_id: str | None = None
    """This service's agency identifier on the axis (a QCVN 102 OrganId)."""
    client_secret: SecretStr | None = None
    """Credential presented to the axis."""
    credentials: dict[str, SecretStr] = {}
    """OrganId → axis secret, one per organisation of this service that exchanges over the axis."""
    poll_seconds: int = Field(default=60, ge=1)
    """How often received packages are fetched (and due retries sent)."""
    max_package_bytes: int = Field(default=300 * 1024**2, ge=1)
    """Largest edXML package accepted."""
    retry_base_seconds: float = Field(default=10.0, gt=0)
    """First retry delay after the axis was unavailable; doubled per attempt, with ±25 % jitter."""
    retry_cap_seconds: float = Field(default=3600.0, gt=0)
    """Longest delay between two attempts."""
    max_attempts: int = Field(default=30, ge=1)
    """Attempts before a send that keeps meeting an unavailable axis is marked failed."""
    verify_revocation: bool = False
    """Fetch OCSP/CRL online when checking the PAdES signatures of received PDFs (LTV data embedded
    in the PDF is always used)."""

    def secret_for(self, organ_id: str) -> str | None:
        """The axis secret of one of our organisations, or None when it has none."""
        secret = self.credentials.get(organ_id)
        if secret is None and organ_id == self.agency_id:
            secret = self.client_secret
        return secret.get_secret_value() if secret is not None else None

    def organ_ids(self) -> list[str]:
        """Our organisations that have axis credentials."""
        ids = set(self.credentials)
        if self.agency_id and self.client_secret is not None:
            ids.add(self.agency_id)
        return sorted(ids)


class Settings(BaseSettings):
    """docsvc configuration. Every field can be set as ``DOCSVC_<NAME>`` (nested: ``__``)."""

    model_config = SettingsConfigDict(env_prefix="DOCSVC_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    """SQLAlchemy URL; defaults to SQLite (WAL) at ``<data_dir>/docsvc.sqlite3``."""
    broker_url: str | None = None
    """Celery broker; defaults to a SQLite-backed transport at ``<data_dir>/broker.sqlite3``."""
    secret_key: SecretStr = SecretStr("")
    """Signs access tokens. Generated and kept in ``<data_dir>/secret_key`` when empty outside production."""
    object_store: ObjectStoreSettings = ObjectStoreSettings()
    allow_filesystem_store_in_production: bool = False
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1)
    auth: AuthSettings = AuthSettings()
    jobs: JobSettings = JobSettings()
    signing: SigningSettings = SigningSettings()
    axis: AxisSettings = AxisSettings()
    root_organ_id: str = "000.00.00.H41"
    """Mã định danh of the province's top organisation, created on first start."""
    root_organisation_name: str = "Ủy ban nhân dân tỉnh"
    root_short_name: str = "UBND"
    start_worker: bool = True
    """``docsvc serve`` starts an embedded Celery worker next to the API."""

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        secret = self.secret_key.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
            raise ValueError("DOCSVC_SECRET_KEY must be a real secret of at least 32 characters in production")
        if self.object_store.kind == "filesystem" and not self.allow_filesystem_store_in_production:
            raise ValueError(
                "the filesystem object store is for development; set DOCSVC_OBJECT_STORE__KIND=s3 "
                "or DOCSVC_ALLOW_FILESYSTEM_STORE_IN_PRODUCTION=true"
            )
        store = self.object_store
        if store.kind == "s3":
            secret = store.secret_key.get_secret_value() if store.secret_key else ""
            if not store.endpoint or not store.access_key or secret.lower() in PLACEHOLDER_SECRETS:
                raise ValueError("the S3 object store needs an endpoint and non-placeholder credentials")
        if not self.database_url or self.database_url.startswith("sqlite"):
            raise ValueError("production needs DOCSVC_DATABASE_URL pointing at PostgreSQL")
        return self

    # Derived values: computed, never stored, so one change of data_dir moves everything.
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'docsvc.sqlite3').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite3').resolve()}"

    @property
    def objects_path(self) -> Path:
        return self.object_store.path or self.data_dir / "objects"

    @property
    def pki_path(self) -> Path:
        return self.signing.pki_dir or self.data_dir / "pki"

    @property
    def revocation_cache_path(self) -> Path:
        return self.signing.revocation_cache_dir or self.data_dir / "revocation-cache"

    def signing_secret(self) -> str:
        """The token-signing secret; in development a random one persisted in the data dir."""
        value = self.secret_key.get_secret_value()
        if value:
            return value
        path = self.data_dir / "secret_key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process of this service won the race
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()




@lru_cache
def get_settings() -> Settings:
    """Read the environment once per process."""
    return Settings()
