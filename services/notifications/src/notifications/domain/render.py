"""Rendering: Jinja2 templates per kind and locale, Babel formatting per recipient.

Layout: `templates/<locale>/<kind>/{subject.txt,body.txt,body.html}.j2`,
the HTML body being a fragment wrapped in `templates/layout.html.j2`. HTML is
autoescaped, text is not. A template missing in the recipient's language
falls back to English; the result says so (`fell_back`, `missing`) and the
optional `on_fallback` callback is called, so the gap gets noticed.

Money and instants are formatted with Babel in the locale actually used for
the text (French text, French numbers) and in the recipient's zone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_datetime_format, get_timezone_name
from babel.numbers import format_currency, format_decimal
from delego_shared.types import Money
from jinja2 import (
    BaseLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup

FALLBACK_LOCALE = "en"
DEFAULT_APP_URL = "https://app.delego.example"
PARTS = ("subject.txt", "body.txt", "body.html")
_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SAFE_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")

_BREAKS = re.compile(r"[ \t\r\n\v\f\x85\u2028\u2029]+")
"""Line breaks and ASCII blanks; no-break spaces are kept (Babel puts them in amounts)."""

FallbackReporter = Callable[[str, str, str], None]
"""Called as (template name, requested locale, locale used)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    """A complete HTML document."""
    html_body: str
    """The same content without the layout (used to build digests)."""
    locale: str
    """Template locale actually used (for the body)."""
    fell_back: bool
    missing: tuple[str, ...] = ()
    """Templates not found in the requested language."""


def _babel_locale(tag: str) -> Locale | None:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None


def _language(tag: str) -> str:
    return re.split(r"[-_]", tag)[0].lower()


@pass_context
def _money(ctx: Context, m: Money) -> str:
    return format_currency(m.amount, m.currency, locale=ctx["_babel"])


@pass_context
def _number(ctx: Context, d: Decimal | int) -> str:
    return format_decimal(d, locale=ctx["_babel"])


@pass_context
def _when(ctx: Context, instant: datetime) -> str:
    """Full date, short time and the zone's name, in the recipient's zone."""
    loc = ctx["_babel"]
    local = instant.astimezone(ZoneInfo(ctx["zone"]))
    pattern = str(get_datetime_format("long", locale=loc)).replace("'", "")
    stamp = pattern.format(
        format_time(local, "short", locale=loc), format_date(local, "full", locale=loc)
    )
    return f"{stamp} ({get_timezone_name(local, 'long', locale=loc)})"


@pass_context
def _day(ctx: Context, instant: datetime) -> str:
    local = instant.astimezone(ZoneInfo(ctx["zone"]))
    return format_date(local, "long", locale=ctx["_babel"])


def make_environment(loader: BaseLoader | None = None) -> Environment:
    env = Environment(
        loader=loader or PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=False, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=_money, number=_number, when=_when, day=_day)
    return env


class Renderer:
    """Renders one kind for one recipient (locale + zone); no I/O besides reading templates."""

    def __init__(
        self,
        loader: BaseLoader | None = None,
        *,
        app_url: str = DEFAULT_APP_URL,
        on_fallback: FallbackReporter | None = None,
    ) -> None:
        self.env = make_environment(loader)
        self.app_url = app_url.rstrip("/")
        self.on_fallback = on_fallback

    def _candidates(self, locale: str) -> list[str]:
        lang = _language(locale)
        return list(dict.fromkeys([locale, lang, FALLBACK_LOCALE]))

    def _render_part(
        self, kind: str, part: str, locale: str, zone: str, context: Mapping[str, Any]
    ) -> tuple[str, str, bool]:
        """(output, template locale used, fell back to another language)."""
        requested = _language(locale)
        for cand in self._candidates(locale):
            name = f"{cand}/{kind}/{part}.j2"
            try:
                template = self.env.get_template(name)
            except TemplateNotFound:
                continue
            same_language = _language(cand) == requested
            babel_tag = locale if same_language else cand
            babel = _babel_locale(babel_tag) or _babel_locale(cand) or Locale.parse("en")
            out = template.render(
                {**context, "locale": cand, "zone": zone, "_babel": babel, "app_url": self.app_url}
            )
            if not same_language and self.on_fallback is not None:
                self.on_fallback(f"{kind}/{part}", locale, cand)
            return out, cand, not same_language
        raise TemplateNotFound(f"{kind}/{part} (no '{locale}' nor '{FALLBACK_LOCALE}' template)")

    def render(self, kind: str, *, locale: str, zone: str, context: Mapping[str, Any]) -> Rendered:
        """`context` holds what the templates read, usually `{"event": <Event>}`."""
        if not _SAFE_NAME.match(kind):
            raise ValueError(f"'{kind}' is not a notification kind")
        if not _SAFE_LOCALE.match(locale):
            raise ValueError(f"'{locale}' is not a locale tag")
        ZoneInfo(zone)  # fail early on a bad zone
        subject, _, fb_s = self._render_part(kind, "subject.txt", locale, zone, context)
        text, used, fb_t = self._render_part(kind, "body.txt", locale, zone, context)
        body_html, _, fb_h = self._render_part(kind, "body.html", locale, zone, context)
        one_line = _BREAKS.sub(" ", subject).strip()  # never a CR/LF in a mail header
        layout = self.env.get_template("layout.html.j2")
        fragment = Markup(body_html)  # noqa: S704 - rendered with autoescape
        html = layout.render(lang=used, title=one_line, content=fragment)
        missing = tuple(
            f"{kind}/{p}" for p, fb in zip(PARTS, (fb_s, fb_t, fb_h), strict=True) if fb
        )
        return Rendered(
            subject=one_line,
            text=text.strip() + "\n",
            html=html,
            html_body=body_html,
            locale=used,
            fell_back=bool(missing),
            missing=missing,
        )
