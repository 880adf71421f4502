"""Log configuration for every serving process: text lines or one JSON object per line.

Request records carry `request_id`, `operation`, `status`, `ms` and `error_code` as record
attributes (passed
with `extra=`); the JSON format puts them in fields of their own. Nothing here ever sees a secret
value: the code that logs never passes one (the canary tests scan the logs of both formats).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FORMATS = ("text", "json")
# Attributes a record may carry from `extra=`, copied to JSON fields when present.
REQUEST_FIELDS = ("request_id", "operation", "status", "ms", "error_code")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # A message quoting client input may hold a lone surrogate, which is not UTF-8.
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:
            safe = {
                k: v.encode("utf-8", "backslashreplace").decode() if isinstance(v, str) else v
                for k, v in entry.items()
            }
            return orjson.dumps(safe, default=str).decode()


def configure_logging(level: str, log_format: str = "text") -> None:
    """Root handler on stderr for this process (the supervisor, and each worker: spawned
    workers start with no logging configuration of their own)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # yoyo narrates every migration step at INFO; only its warnings matter to an operator.
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    # botocore's debug records quote request parameters (of calls to an external KMS protector,
    # for one): never below INFO, whatever the server's level.
    for chatty in ("botocore", "boto3", "urllib3"):
        logging.getLogger(chatty).setLevel(max(logging.INFO, root.level))
