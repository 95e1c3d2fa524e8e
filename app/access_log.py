"""One JSON line per request on stdout; probe requests are logged at debug level."""

import json
import logging
import sys
import time
from datetime import UTC, datetime

PROBE_PATHS = frozenset({"/ready", "/healthz"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line)


class StdoutHandler(logging.StreamHandler):
    """Writes to the current sys.stdout, even when it is replaced after the handler is made."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


def make_logger(name: str, level: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(level.upper())
    logger.propagate = False
    if not logger.handlers:
        handler = StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    return logger


def log_request(logger, *, method, path, status, started, version, pod, worker_pid):
    level = logging.DEBUG if path in PROBE_PATHS else logging.INFO
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "version": version,
        "pod": pod,
        "worker_pid": worker_pid,
    }
    logger.log(level, "request", extra={"fields": fields})
