"""The operator's log lines: one JSON object per line (`--log-format json`) or plain text.

JSON records carry `ts` (UTC, ISO 8601 with milliseconds), `level`, `logger` and `message`,
then the record's extra fields: kopf's reference to the object a line is about becomes
`object` ({apiVersion, kind, name, uid, namespace}); an exception becomes the string field
`exception` (its traceback), a stack the string field `stack`. Every value is made
JSON-safe (non-finite floats and unknown objects become strings), and non-ASCII characters are
escaped, so a line never contains a raw newline and always parses with `json.loads`. Both
formats pass every line through `redact()`: no URL userinfo, bearer token or password is logged.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from paretoscale.redact import redact

LogFormat = Literal["json", "text"]
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Attributes every LogRecord has; anything else on a record came through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
# kopf's internals: the operator's settings object and its "do not post as an event" flag.
_KOPF_INTERNAL = frozenset({"settings", "k8s_skip"})


def jsonable(value: Any) -> Any:
    """`value` with every part JSON can hold as is, the rest as strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key in _KOPF_INTERNAL or key.startswith("_"):
                continue
            doc["object" if key == "k8s_ref" else key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(jsonable(doc), ensure_ascii=True, allow_nan=False))


class TextFormatter(logging.Formatter):
    """`2026-12-06 13:07:36,123 INFO    paretoscale: [ns/name] message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ref = getattr(record, "k8s_ref", None)
        line = super().format(record)
        if isinstance(ref, Mapping) and ref.get("name"):
            where = "/".join(str(p) for p in (ref.get("namespace"), ref["name"]) if p)
            head, sep, rest = line.partition(": ")
            return redact(f"{head}{sep}[{where}] {rest}")
        return redact(line)


def configure_logging(
    fmt: LogFormat = "json", level: str = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records (the operator's, kopf's, the clients') at `level` and above
    to `stream` (stderr) in `fmt`; replaces the root logger's handlers. Returns the handler.
    kopf's per-object lines ("Handler ... succeeded", one per watch event) show only at DEBUG:
    at INFO they would be a line per status write of every ModelDeployment."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    kopf_objects = logging.getLogger("kopf.objects")
    kopf_objects.setLevel(logging.DEBUG if level == "DEBUG" else max(root.level, logging.WARNING))
    logging.captureWarnings(True)
    return handler
