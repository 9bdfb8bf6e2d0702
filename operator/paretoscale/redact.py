"""Credentials out of text that leaves the process: log lines, Events, status conditions.

`redact(text)` replaces what would let a reader act as the operator: the userinfo of a URL
(`https://user:secret@prometheus` -> `https://***@prometheus`), bearer and basic
Authorization values, JSON Web Tokens (a ServiceAccount token is one) wherever they appear,
and the values of `password`, `token`, `secret`, `api_key` and `access_token` in query
strings and `key=value` or `key: value` text. Everything else is left as it was. Pure; used at
the edges (controller/logs.py, api/conditions.py, actuate/kube.py, observe/prometheus.py).
"""

from __future__ import annotations

import functools
import re

MASK = "***"

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host or scheme://token@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@"), rf"\1{MASK}@"),
    # Authorization: Bearer xyz / Basic xyz (header values, also inside repr'd dicts)
    (
        re.compile(
            r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic)\s+)?)[^\s'\",}]+"
        ),
        rf"\1{MASK}",
    ),
    # "Bearer xyz" without the header name: a credential has a digit and 8+ characters
    # (so "bearer token file" stays words).
    (
        re.compile(r"\b(Bearer|Basic|bearer|basic)(\s+)(?=[\w.~+/=-]*[0-9])[\w.~+/=-]{8,}"),
        rf"\1\2{MASK}",
    ),
    # A JSON Web Token anywhere (header.payload.signature, base64url, header starts "eyJ")
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), MASK),
    # password=..., token: ..., "api_key": "..." (query strings, settings, dict reprs)
    (
        re.compile(
            r"(?i)(?<![/\w.-])((?:password|passwd|token|secret|api[_-]?key|access[_-]?token)"
            r"['\"]?\s*[=:]\s*['\"]?)[^\s&'\",;}]+"
        ),
        rf"\1{MASK}",
    ),
)


@functools.lru_cache(maxsize=8192)
def redact(text: str) -> str:
    """`text` with every credential it holds replaced by `***`. Memoized: the same condition
    messages are redacted again on every tick of every object."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_url(url: str) -> str:
    """A URL fit to show: its userinfo and credential query values masked."""
    return redact(url)
