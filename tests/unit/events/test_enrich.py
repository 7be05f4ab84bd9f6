"""Event enrichment: device, OS and browser from the user agent, local time from the time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import ua_parser

from personify.events import enrich as enrich_module
from personify.events.enrich import DEVICE_TYPES, enrich

AT = datetime(2024, 3, 10, 23, 30, tzinfo=UTC)  # a Sunday in UTC, Monday morning in Tokyo

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME_MOBILE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.6312.99 Mobile Safari/537.36"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_TABLET_CHROME = (
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.6312.99 Safari/537.36"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36"
)
WINDOWS_EDGE = WINDOWS_CHROME + " Edg/123.0.2420.81"
MACOS_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"
CHROMEBOOK = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/123.0.6312.99 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BAIDU_SPIDER = "Baiduspider+(+http://www.baidu.com/search/spider.htm)"
SAMSUNG_TV = (
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36"
)
FIRE_TV = (
    "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/70.0.3538.110 Mobile Safari/537.36"
)
PLAYSTATION_5 = (
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.0 Safari/605.1.15"
)
XBOX_ONE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/48.0.2564.82 Safari/537.36 Edge/20.02"
)
KINDLE_FIRE = (
    "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Silk/123.2.1 like Chrome/123.0.6312.99 Safari/537.36"
)
ANDROID_APP_DALVIK = "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP1A.240405.002)"
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Mobile Safari/537.36"
)


def _ua(user_agent: str, **context: Any) -> dict[str, Any]:
    return enrich(AT, {"userAgent": user_agent, **context})


@pytest.mark.parametrize(
    ("user_agent", "device_type", "os", "browser"),
    [
        pytest.param(IPHONE_SAFARI, "mobile", "iOS", "Safari", id="iphone-safari"),
        pytest.param(ANDROID_CHROME_MOBILE, "mobile", "Android", "Chrome", id="android-chrome"),
        pytest.param(IPAD_SAFARI, "tablet", "iOS", "Safari", id="ipad"),
        pytest.param(ANDROID_TABLET_CHROME, "tablet", "Android", "Chrome", id="android-tablet"),
        pytest.param(WINDOWS_CHROME, "desktop", "Windows", "Chrome", id="windows-chrome"),
        pytest.param(WINDOWS_EDGE, "desktop", "Windows", "Edge", id="windows-edge"),
        pytest.param(MACOS_SAFARI, "desktop", "Mac OS X", "Safari", id="macos-safari"),
        pytest.param(LINUX_FIREFOX, "desktop", "Linux", "Firefox", id="ubuntu-firefox"),
        pytest.param(CHROMEBOOK, "desktop", "Chrome OS", "Chrome", id="chromebook"),
        pytest.param(GOOGLEBOT, "bot", None, "Googlebot", id="googlebot"),
        pytest.param(GOOGLEBOT_SMARTPHONE, "bot", "Android", "Googlebot", id="googlebot-mobile"),
        pytest.param(BAIDU_SPIDER, "bot", None, "Baiduspider", id="baiduspider"),
        pytest.param(SAMSUNG_TV, "tv", "Tizen", "Samsung Internet", id="samsung-tv"),
        pytest.param(FIRE_TV, "tv", "Android", "Chrome Mobile WebView", id="fire-tv"),
        pytest.param(PLAYSTATION_5, "console", None, "Safari", id="playstation"),
        pytest.param(XBOX_ONE, "console", "Windows", "Edge", id="xbox"),
        pytest.param(KINDLE_FIRE, "tablet", "Android", "Amazon Silk", id="kindle"),
        pytest.param(ANDROID_APP_DALVIK, "mobile", "Android", "Android", id="android-app"),
        pytest.param(CUBOT_PHONE, "mobile", "Android", "Chrome", id="cubot-is-not-a-bot"),
        pytest.param("python-requests/2.31.0", "unknown", None, "Python Requests", id="requests"),
        pytest.param("analytics-python/2.3.2", "unknown", None, None, id="segment-sdk"),
    ],
)
def test_user_agent_gives_device_type_os_and_browser(
    user_agent: str, device_type: str, os: str | None, browser: str | None
) -> None:
    out = _ua(user_agent)

    assert (out["device_type"], out["os"], out["browser"]) == (device_type, os, browser)


@pytest.mark.parametrize("user_agent", [None, "", 42, ["Mozilla/5.0"]])
def test_missing_or_malformed_user_agent_is_unknown(user_agent: object) -> None:
    out = enrich(AT, {"userAgent": user_agent})

    assert (out["device_type"], out["os"], out["browser"]) == ("unknown", None, None)


def test_none_context_gives_unknown_device_and_utc_time() -> None:
    assert enrich(AT, None) == {
        "device_type": "unknown",
        "os": None,
        "browser": None,
        "local_hour": 23,
        "local_weekday": 6,
        "timezone": "UTC",
    }


def test_every_result_has_a_known_device_type() -> None:
    agents = [IPHONE_SAFARI, GOOGLEBOT, SAMSUNG_TV, XBOX_ONE, "curl/8.4.0", "x" * 5000]

    assert {_ua(ua)["device_type"] for ua in agents} <= set(DEVICE_TYPES)


def test_context_timezone_gives_local_hour_and_weekday() -> None:
    out = enrich(AT, {"timezone": "Asia/Tokyo"})

    assert (out["local_hour"], out["local_weekday"], out["timezone"]) == (8, 0, "Asia/Tokyo")


@pytest.mark.parametrize(
    ("utc_hour", "utc_minute", "local_hour"),
    [(6, 30, 1), (7, 30, 3)],  # New York springs forward at 02:00 local on 2024-03-10
)
def test_local_hour_follows_daylight_saving_change(
    utc_hour: int, utc_minute: int, local_hour: int
) -> None:
    at = datetime(2024, 3, 10, utc_hour, utc_minute, tzinfo=UTC)

    assert enrich(at, {"timezone": "America/New_York"})["local_hour"] == local_hour


@pytest.mark.parametrize(
    "timezone",
    ["Mars/Olympus_Mons", "", "utc", "America", "../../etc/passwd", "zone.tab", "x" * 300, 5, None],
)
def test_invalid_timezone_falls_back_to_utc(timezone: object) -> None:
    out = enrich(AT, {"timezone": timezone})

    assert (out["local_hour"], out["local_weekday"], out["timezone"]) == (23, 6, "UTC")


def test_naive_timestamp_is_read_as_utc() -> None:
    out = enrich(datetime(2024, 3, 10, 23, 30), {"timezone": "Asia/Tokyo"})

    assert (out["local_hour"], out["local_weekday"]) == (8, 0)


@pytest.mark.parametrize("platform", ["ios", "android", "iOS"])
def test_mobile_sdk_device_type_means_mobile(platform: str) -> None:
    out = enrich(AT, {"device": {"type": platform}, "userAgent": "analytics-python/2.3.2"})

    assert out["device_type"] == "mobile"


def test_mobile_sdk_on_an_ipad_model_is_a_tablet() -> None:
    out = enrich(AT, {"device": {"type": "ios", "model": "iPad13,1"}})

    assert out["device_type"] == "tablet"


def test_mobile_sdk_keeps_tablet_read_from_the_user_agent() -> None:
    assert _ua(ANDROID_TABLET_CHROME, device={"type": "android"})["device_type"] == "tablet"


def test_declared_form_factor_overrides_the_user_agent() -> None:
    assert _ua(MACOS_SAFARI, device={"type": "Tablet"})["device_type"] == "tablet"


@pytest.mark.parametrize("device", [{"type": "web"}, {"type": 3}, "ios", None])
def test_unrecognised_context_device_is_ignored(device: object) -> None:
    assert _ua(WINDOWS_CHROME, device=device)["device_type"] == "desktop"


def test_context_os_name_fills_in_when_the_user_agent_has_none() -> None:
    assert enrich(AT, {"os": {"name": "iOS", "version": "17.4"}})["os"] == "iOS"


def test_user_agent_os_wins_over_context_os_name() -> None:
    assert _ua(WINDOWS_CHROME, os={"name": "Android"})["os"] == "Windows"


def test_repeated_user_agent_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting_parse(ua: str) -> Any:
        calls.append(ua)
        return ua_parser.parse(ua)

    monkeypatch.setattr(enrich_module, "parse", counting_parse)
    unique = IPHONE_SAFARI + " test-repeated-user-agent-is-parsed-once"

    first, second = _ua(unique), _ua(unique)

    assert calls == [unique]
    assert first == second


# -- the processor's cached path ----------------------------------------------------------
_CONTEXTS: list[Any] = [
    None,
    {},
    "not a context",
    {"userAgent": IPHONE_SAFARI, "timezone": "Asia/Tokyo"},
    {"userAgent": ANDROID_TABLET_CHROME, "timezone": "Asia/Kolkata"},
    {"userAgent": IPAD_SAFARI, "timezone": "America/St_Johns"},
    {"userAgent": ANDROID_CHROME_MOBILE, "timezone": "Not/AZone"},
    {"device": {"type": "ios", "model": "iPad13,1"}, "os": {"name": " iPadOS "}},
    {"device": {"type": "TV"}, "timezone": 5},
    {"os": {"name": "Tizen"}, "userAgent": 7},
]
_TIMES = [
    datetime(2024, 3, 10, 23, 30, tzinfo=UTC),
    datetime(2024, 3, 31, 0, 59, 59, 999999, tzinfo=UTC),  # the Paris DST switch, 1 µs before
    datetime(1937, 1, 14, 23, 40, 28, tzinfo=UTC),  # Amsterdam was UTC+00:19:32 then
    datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
]


@pytest.mark.parametrize("context", _CONTEXTS)
@pytest.mark.parametrize("at", _TIMES)
def test_event_fields_match_enrich(context: Any, at: datetime) -> None:
    stored = at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    full = enrich(at, context)
    expected = tuple(full[k] for k in ("device_type", "os", "browser", "local_hour"))
    assert enrich_module.event_fields(stored, context)[:4] == expected
    assert enrich_module.event_fields(stored, context).local_weekday == full["local_weekday"]


def test_event_fields_accept_a_timestamp_that_is_not_in_the_stored_form() -> None:
    fields = enrich_module.event_fields("2024-03-11T08:30:00+09:00", {"timezone": "Europe/Paris"})
    # 08:30 in Tokyo is 23:30 UTC on Sunday, which is 00:30 on Monday in Paris (UTC+1).
    assert (fields.local_hour, fields.local_weekday) == (0, 0)


def test_event_fields_in_amsterdam_1937_use_the_seconds_offset() -> None:
    # Amsterdam was UTC+00:19:32 then: 23:40:28 UTC is midnight local, the next day.
    at = datetime(1937, 1, 14, 23, 40, 28, tzinfo=UTC)
    stored = at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    ctx = {"timezone": "Europe/Amsterdam"}
    full = enrich(at, ctx)
    fields = enrich_module.event_fields(stored, ctx)
    assert (fields.local_hour, fields.local_weekday) == (full["local_hour"], full["local_weekday"])
    assert (fields.local_hour, fields.local_weekday) == (0, 4)  # Friday 15 January
