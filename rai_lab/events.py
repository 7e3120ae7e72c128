"""The kit's one reporting path: the in-kernel call log, and a JSON-lines file for `rai-lab run`."""

from __future__ import annotations

import json
import os
import threading
import time

EVENTS_ENV = "RAI_LAB_EVENTS"

CALLS: list[dict] = []
_lock = threading.Lock()


def emit(kind: str, **data: object) -> None:
    """Record an event; written to the file named by RAI_LAB_EVENTS when set (never a secret)."""
    record = {"kind": kind, "time": round(time.time(), 3), **data}
    if kind == "call":
        with _lock:
            CALLS.append(record)
    path = os.environ.get(EVENTS_ENV)
    if path:
        with _lock, open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def read(path: str) -> list[dict]:
    """The events written to `path` (an empty list when there is none)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []
