"""Derive device, OS, browser and local-time fields for an event.

Segments and models want "mobile users in the evening", not raw user-agent strings and UTC
instants, so every event is enriched once at ingestion. Ingestion runs at tens of thousands of
events per second while the set of distinct user agents and time zones is small, so both lookups
are cached: a repeated user agent costs a dictionary hit, not a regex scan.

>>> from datetime import UTC, datetime
>>> ctx = {"userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
...        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
...        "timezone": "Asia/Tokyo"}
>>> enrich(datetime(2024, 3, 10, 23, 30, tzinfo=UTC), ctx)["device_type"]
'mobile'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from ua_parser import parse

DEVICE_TYPES: Final = ("mobile", "tablet", "desktop", "bot", "tv", "console", "unknown")
UA_CACHE_SIZE: Final = 10_000
# Real user agents stay well below this; longer input is cut so hostile strings cannot make
# parsing slow or the cache large.
MAX_UA_LENGTH: Final = 1024

# Mobile builds of a browser are the same browser; the form factor is already in device_type.
_BROWSER_ALIASES: Final = {
    "Mobile Safari": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
# ua-parser reports some desktop Linux distributions by name; they are all "Linux" to us.
_LINUX_DISTROS: Final = frozenset(
    {
        "Arch Linux", "CentOS", "Debian", "Fedora", "Gentoo", "Kubuntu", "Linux Mint",
        "Lubuntu", "Mageia", "Mint", "openSUSE", "PCLinuxOS", "Red Hat", "Slackware", "SUSE",
        "Ubuntu",
    }
)  # fmt: skip
_DESKTOP_OS: Final = frozenset({"Windows", "Mac OS X", "Mac OS", "Linux", "Chrome OS", "FreeBSD"})
_TV_OS: Final = frozenset({"tvOS", "ATV OS X", "webOS", "FireHbbTV"})

# "(?<!cu)" keeps Cubot phones out; "(?![a-z])" keeps words like "bottle" out.
_BOT_RE: Final = re.compile(r"(?:(?<!cu)bot|crawler|spider|slurp)(?![a-z])", re.IGNORECASE)
_TV_RE: Final = re.compile(
    r"(?i:smart-?tv|hbbtv|\btv\b|google ?tv|android ?tv|apple ?tv|roku|crkey|web0s|netcast)"
    r"|\bAFT[A-Z]"  # Amazon Fire TV models: AFTB, AFTMM, AFTS...
)
_CONSOLE_RE: Final = re.compile(r"playstation|xbox|nintendo", re.IGNORECASE)
_TABLET_RE: Final = re.compile(r"ipad|\btablet\b(?! pc)|kindle|\bsilk\b|playbook", re.IGNORECASE)
_MOBILE_RE: Final = re.compile(
    r"iphone|ipod|mobile|\bmobi\b|phone|android|blackberry|opera mini|kaios", re.IGNORECASE
)
_DESKTOP_RE: Final = re.compile(r"windows nt|macintosh|\bx11\b|\bcros\b", re.IGNORECASE)

# context.device.type values: form factors are trusted as is; platforms sent by the mobile
# SDKs ("ios", "android") mean a handheld, a tablet only when the user agent or model says so.
_CONTEXT_FORM_FACTORS: Final = {
    "mobile": "mobile",
    "phone": "mobile",
    "smartphone": "mobile",
    "tablet": "tablet",
    "desktop": "desktop",
    "tv": "tv",
    "smarttv": "tv",
    "console": "console",
    "bot": "bot",
}
_CONTEXT_PLATFORMS: Final = frozenset({"ios", "android", "ipados"})


class _Agent(NamedTuple):
    device_type: str
    os: str | None
    browser: str | None


_NO_AGENT: Final = _Agent("unknown", None, None)


def enrich(timestamp: datetime, context: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return device, OS, browser and local time fields for an event.

    ``timestamp`` is the event time (aware; a naive value is read as UTC). ``context`` is the
    Segment ``context`` object; every part of it is optional and malformed parts are ignored,
    so this never raises on bad input. ``timezone`` in the result is the IANA name used for
    ``local_hour``/``local_weekday``: ``context.timezone`` when valid, else ``"UTC"``.

    >>> from datetime import UTC, datetime
    >>> out = enrich(datetime(2024, 3, 10, 23, 30, tzinfo=UTC), {"timezone": "Asia/Tokyo"})
    >>> out["local_hour"], out["local_weekday"], out["device_type"], out["os"]
    (8, 0, 'unknown', None)
    """
    ctx: Mapping[str, Any] = context if isinstance(context, Mapping) else {}
    ua = ctx.get("userAgent")
    agent = _parse_agent(ua[:MAX_UA_LENGTH]) if isinstance(ua, str) and ua else _NO_AGENT
    device_type, os_name = _apply_device_context(agent, ctx)

    tz_name = ctx.get("timezone")
    zone = _zone(tz_name) if isinstance(tz_name, str) else None
    if zone is None:
        tz_name, zone = "UTC", UTC
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    local = timestamp.astimezone(zone)
    return {
        "device_type": device_type,
        "os": os_name,
        "browser": agent.browser,
        "local_hour": local.hour,
        "local_weekday": local.weekday(),
        "timezone": tz_name,
    }


class EventFields(NamedTuple):
    """The enriched columns of an event row."""

    device_type: str
    os: str | None
    browser: str | None
    local_hour: int
    local_weekday: int


def event_fields(timestamp: str, context: object) -> EventFields:
    """The same fields as :func:`enrich` for an ISO-8601 timestamp, computed from caches.

    This is the processor's hot path: the user agent is parsed once per distinct string and
    the local time once per (time zone, second), so most events cost a few dictionary hits.

    >>> event_fields("2024-03-10T23:30:00.000000Z", {"timezone": "Asia/Tokyo"})[3:]
    (8, 0)
    """
    # type() first: an isinstance check against the Mapping ABC is slow on this hot path.
    ctx: Mapping[str, Any] = (
        context if type(context) is dict or isinstance(context, Mapping) else {}
    )
    ua = ctx.get("userAgent")
    agent = _parse_agent(ua[:MAX_UA_LENGTH]) if isinstance(ua, str) and ua else _NO_AGENT
    if "device" in ctx or (agent.os is None and "os" in ctx):
        device_type, os_name = _apply_device_context(agent, ctx)
    else:
        device_type, os_name = agent.device_type, agent.os
    tz_name = ctx.get("timezone")
    if not (len(timestamp) == 27 and timestamp[19] == "." and timestamp[26] == "Z"):
        # Not the stored form (UTC, microseconds, "Z"): bring it to UTC first.
        moment = datetime.fromisoformat(timestamp)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        timestamp = moment.isoformat(timespec="microseconds") + "Z"
    # Offsets are whole seconds, so the local hour and weekday depend only on the second.
    hour, weekday = _local_time(tz_name if isinstance(tz_name, str) else "", timestamp[:19])
    return EventFields(device_type, os_name, agent.browser, hour, weekday)


@lru_cache(maxsize=4096)
def _local_time(tz_name: str, second: str) -> tuple[int, int]:
    """Local hour and weekday of a UTC time given to the second (``YYYY-MM-DDTHH:MM:SS``)."""
    zone = _zone(tz_name) if tz_name else None
    local = datetime.fromisoformat(second).replace(tzinfo=UTC).astimezone(zone or UTC)
    return local.hour, local.weekday()


def _apply_device_context(agent: _Agent, ctx: Mapping[str, Any]) -> tuple[str, str | None]:
    """Refine the user-agent reading with what mobile SDKs put in ``device`` and ``os``."""
    device_type, os_name = agent.device_type, agent.os
    device = ctx.get("device")
    if isinstance(device, Mapping):
        declared = device.get("type")
        if isinstance(declared, str):
            declared = declared.strip().lower()
            if declared in _CONTEXT_FORM_FACTORS:
                device_type = _CONTEXT_FORM_FACTORS[declared]
            elif declared in _CONTEXT_PLATFORMS:
                model = device.get("model")
                is_ipad = isinstance(model, str) and model.startswith("iPad")
                device_type = "tablet" if is_ipad or device_type == "tablet" else "mobile"
    if os_name is None:
        os_info = ctx.get("os")
        name = os_info.get("name") if isinstance(os_info, Mapping) else None
        if isinstance(name, str) and name.strip():
            os_name = name.strip()
    return device_type, os_name


@lru_cache(maxsize=UA_CACHE_SIZE)
def _parse_agent(ua: str) -> _Agent:
    """Parse a user agent once; the result is reused for every event that sends it again."""
    result = parse(ua)
    os_family = result.os.family if result.os and result.os.family != "Other" else None
    if os_family in _LINUX_DISTROS:
        os_family = "Linux"
    browser = result.user_agent.family if result.user_agent else None
    if browser == "Other":
        browser = None
    device_family = result.device.family if result.device else ""
    device_brand = (result.device.brand or "") if result.device else ""
    device_type = _device_type(ua, os_family, device_family, device_brand)
    return _Agent(device_type, os_family, _BROWSER_ALIASES.get(browser or "", browser))


def _device_type(ua: str, os_family: str | None, device_family: str, device_brand: str) -> str:
    """Classify the form factor; the order matters (a Googlebot UA also says "Android")."""
    if device_family == "Spider" or _BOT_RE.search(ua):
        return "bot"
    if _TV_RE.search(ua) or os_family in _TV_OS or (os_family or "").startswith("Chromecast"):
        return "tv"
    if _CONSOLE_RE.search(ua):
        return "console"
    lowered = ua.lower()
    # Browsers on Android tablets drop the "Mobile" token (app HTTP clients such as Dalvik
    # never send it, so the rule only applies to browser-style user agents).
    android_tablet = "android" in lowered and "mobile" not in lowered and ua.startswith("Mozilla/")
    if (
        android_tablet
        or _TABLET_RE.search(ua)
        or device_brand == "Generic_Android_Tablet"
        or device_family in ("iPad", "Generic Tablet", "Kindle")
    ):
        return "tablet"
    if _MOBILE_RE.search(ua) or os_family in ("iOS", "Android", "Windows Phone", "KaiOS"):
        return "mobile"
    if os_family in _DESKTOP_OS or _DESKTOP_RE.search(ua):
        return "desktop"
    return "unknown"


@lru_cache(maxsize=1024)
def _zone(name: str) -> tzinfo | None:
    """The zone for an IANA name, or None when the name is not a usable zone."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # unknown key, bad path, directory, too long
        return None
