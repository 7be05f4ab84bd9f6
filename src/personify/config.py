"""The settings tree: every knob personify has, read once from the environment.

All settings use the ``PERSONIFY_`` prefix; nested groups use ``__`` (for example
``PERSONIFY_COLLECT__MAX_BATCH_BYTES``). No other module reads the environment.

>>> s = Settings(data_dir="/tmp/p", write_keys="k1,k2")
>>> s.write_key_sources()
{'k1': 'k1', 'k2': 'k2'}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectSettings(_Group):
    """Limits and behaviour of the Segment-compatible collector."""

    max_message_bytes: int = Field(32 * 1024, description="Largest accepted message (JSON bytes).")
    max_batch_bytes: int = Field(500 * 1024, description="Largest accepted batch request body.")
    max_batch_messages: int = Field(2500, description="Most messages accepted in one batch.")
    max_processing_lag: int = Field(
        3000,
        description=(
            "Backpressure: while more accepted messages than this wait for the processor, "
            "HTTP collection waits before accepting more, so profiles stay fresh."
        ),
    )
    max_processing_delay_s: float = Field(
        0.25,
        ge=0,
        description=(
            "Backpressure in time: HTTP collection also waits while the waiting messages "
            "would take the processor longer than this to clear at its recent rate (a "
            "processor slowed by many segments gets a shorter queue). 0 turns it off."
        ),
    )
    backpressure_timeout_s: float = Field(
        10.0, description="Longest a request waits for the processor before answering 503."
    )
    max_decompressed_bytes: int = Field(
        2 * 1024 * 1024, description="Largest body accepted after gzip decompression."
    )


class IdentitySettings(_Group):
    """Identity resolution guardrails and normalization."""

    junk_values: list[str] = Field(
        default=[
            "",
            "null",
            "none",
            "nil",
            "undefined",
            "anonymous",
            "unknown",
            "guest",
            "0",
            "-1",
            "n/a",
            "na",
            "test",
            "[object object]",
            "nan",
            "false",
            "true",
            "00000000-0000-0000-0000-000000000000",
        ],
        description="Identifier values never used to link or merge profiles (compared lower-case).",
    )
    default_phone_region: str = Field(
        "US", description="ISO region used to read phone numbers written without a country code."
    )


class ProfileSettings(_Group):
    """Unified profile behaviour."""

    session_timeout_minutes: int = Field(30, description="Inactivity that starts a new session.")
    trait_source_priority: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Per-trait source priority overriding 'newest wins', e.g. "
            '{"email": ["crm", "web"]}: a value from an earlier source in the list is never '
            "replaced by one from a later source."
        ),
    )
    lapsing_after_days: int = Field(90, description="Days without an order before 'lapsing'.")
    churned_after_days: int = Field(180, description="Days without an order before 'churned'.")


# EU and EEA members and the UK: GDPR (or UK GDPR) applies, so purposes are opt-in.
_EU_EEA_UK = (  # noqa: SIM905 (a list of 31 quoted codes would be harder to check)
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB"
).split()


_MINIMAL_PROPERTIES = ("revenue", "total", "currency", "order_id", "product_id", "decision_id")
_DEFAULT_PII: tuple[str, ...] = ("email", "phone", "name", "first_name", "last_name")
_DEFAULT_PII += ("firstName", "lastName", "address", "street", "birthday", "ip")


class PrivacySettings(_Group):
    """Consent defaults, pseudonymization secret, API keys and erasure behaviour."""

    secret: str | None = Field(
        None,
        description=(
            "Secret for HMAC pseudonyms (suppression list, exports). Unset: a random secret is "
            "created once in <data_dir>/privacy.key (mode 0600)."
        ),
    )
    consent_defaults: dict[str, dict[str, bool]] = Field(
        default_factory=lambda: {
            "default": {
                "analytics": True,
                "personalization": True,
                "profiling": True,
                "marketing_email": False,
                "marketing_push": False,
            },
            "eu": {
                "analytics": False,
                "personalization": False,
                "profiling": False,
                "marketing_email": False,
                "marketing_push": False,
            },
        },
        description=(
            "Per region, whether each purpose is allowed before the person said anything "
            "(true: opt-out, false: opt-in). Region 'default' covers every other country."
        ),
    )
    regions: dict[str, list[str]] = Field(
        default_factory=lambda: {"eu": list(_EU_EEA_UK)},
        description="Region name -> ISO country codes (read from the trait 'country' or "
        "'address.country').",
    )
    # A write key is shared by every browser of a site, so the default leaves room for a
    # busy one; lower it for keys handed to less trusted parties.
    rate_per_second: float = Field(
        1000.0, description="Requests per second each key may send to the public endpoints."
    )
    rate_burst: int = Field(2000, description="Requests a key may send at once (bucket size).")
    encrypt_pii: bool = Field(
        False,
        description="Seal PII and sensitive trait values and email/phone identities in the "
        "profile store with AES-256-GCM, and keep email/phone lookup keys as HMACs. Set it "
        "on a new data directory (existing plain rows are not converted).",
    )
    pii_key: str | None = Field(
        None,
        description="The AES-256 key as 64 hex characters. Unset: a keyring is created once "
        "in <data_dir>/pii.keys (mode 0600); keep it apart from backups of the data.",
    )
    pii_traits: list[str] = Field(
        default_factory=lambda: list(_DEFAULT_PII),
        description="Traits classified as PII (sealed when encrypt_pii is on).",
    )
    sensitive_traits: list[str] = Field(
        default_factory=list,
        description="Traits classified as sensitive (health, beliefs...; sealed like PII).",
    )
    trait_allowlist: list[str] | None = Field(
        None,
        description="Data minimization: the only traits kept on ingestion (identify traits "
        "and context.traits); others are dropped and counted. Unset: keep all. 'consent' "
        "is always kept; list email/phone if identities should link by them.",
    )
    dp_epsilon: float | None = Field(
        None,
        gt=0,
        description="Epsilon of the Laplace noise on segment sizes released through "
        "GET /v1/privacy/aggregates/segments (unset: that endpoint is off).",
    )
    minimal_properties: list[str] = Field(
        default_factory=lambda: list(_MINIMAL_PROPERTIES),
        description="What an event keeps of its properties when its own consent context "
        "refuses analytics (context.consent.categoryPreferences.analytics = false).",
    )
    retention_days: dict[str, int] = Field(
        default_factory=dict,
        description="Days events are kept, per track event name; '*' covers every other "
        'message, e.g. {"Product Viewed": 90, "*": 730}. Empty: kept forever. '
        "Applied by `personify privacy retention` or POST /v1/privacy/retention.",
    )
    decision_retention_days: int | None = Field(
        None, ge=1, description="Days decisions (and their rewards) are kept (unset: forever)."
    )
    retention_interval_s: float = Field(
        86_400.0,
        gt=0,
        description="How often the server applies the retention periods (first run at start).",
    )
    quarantine_retention_days: int | None = Field(
        None, ge=1, description="Days quarantined messages keep their payload (unset: forever)."
    )
    vacuum_after_erase: bool = Field(
        True,
        description="Rewrite SQLite files after an erasure so deleted bytes leave the disk "
        "(slower on large stores).",
    )


class ModelSettings(_Group):
    retrain_check_hours: float = Field(
        24.0,
        ge=0,
        description="How often the server checks whether a churn or purchase model is due for "
        "retraining (drift at the last scoring, or age); 0 turns the scheduled check off.",
    )
    retrain_after_days: int = Field(
        30, ge=1, description="A model older than this many days is retrained."
    )


class Settings(BaseSettings):
    """Root of the settings tree (environment prefix ``PERSONIFY_``)."""

    model_config = SettingsConfigDict(
        env_prefix="PERSONIFY_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(
        Path("./personify-data"), description="Directory holding all embedded-mode state."
    )
    write_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Write keys the collector accepts, comma-separated. 'key=source' names the source "
            "recorded as trait provenance (default: the key itself)."
        ),
    )
    admin_key: str | None = Field(
        None, description="Bearer key for the admin API (profiles, quarantine). Unset: admin off."
    )
    state_backend: Literal["sqlite", "memory"] = Field(
        "sqlite", description="Operational state store (profiles, identities, quarantine)."
    )
    event_store_backend: Literal["duckdb", "memory"] = Field(
        "duckdb", description="Event store for the timeline and analytics."
    )
    bus_backend: Literal["sqlite", "memory"] = Field(
        "sqlite",
        description="Durable event log between collector and processor ('memory' is not durable).",
    )
    cache_size: int = Field(100_000, description="Profiles kept in the in-process cache.")
    datasets_dir: Path | None = Field(
        None, description="Where the real public datasets live (tests and benchmarks only)."
    )
    require_datasets: bool = Field(
        False, description="Fail (not skip) tests whose real datasets are missing (set by CI)."
    )
    collect: CollectSettings = Field(default_factory=CollectSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    profiles: ProfileSettings = Field(default_factory=ProfileSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    models: ModelSettings = Field(default_factory=ModelSettings)

    @field_validator("write_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _no_unknown_env(self) -> Settings:
        # pydantic-settings ignores unknown variables; a typo must fail at start-up instead.
        known = {f"PERSONIFY_{name.upper()}" for name in type(self).model_fields}
        unknown = sorted(
            k
            for k in os.environ
            if k.upper().startswith("PERSONIFY_") and k.upper().split("__")[0] not in known
        )
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return self

    def write_key_sources(self) -> dict[str, str]:
        """Map each accepted write key to the source name recorded with its data."""
        out: dict[str, str] = {}
        for entry in self.write_keys:
            key, _, source = entry.partition("=")
            out[key.strip()] = source.strip() or key.strip()
        return out
