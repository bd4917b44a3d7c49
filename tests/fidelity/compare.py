"""Turn a fidelity probe's raw output into what must be equal, and diff two of them.

What is masked, and why it may differ between two correct servers:
  ids            user and realm ids ("id", /Users/<n>, "Key (realm_id, name)=(<n>, ...)")
  dates          meta.created / lastModified, log timestamps in restart-server's output
  deployments    the timestamped deployment folder in paths (/home/zulip/deployments/<ts>/)
  addresses      IPv4 addresses (each host has its own)
  the realm owners, made by different installers: their userName, name and
                 displayName in the user list (the probe's own users stay unmasked)
  tracebacks     only the last line (the exception) counts, not the frames
  HTML pages     only that the body is an HTML page (Zulip's templates are not imitated)
  timings, PIDs  not in the view at all ("timings" is reported, never compared)
  server processes in manage.log: never here; the probe leaves out the runs of
                 what supervisor and cron start (a real restart starts Tornado and the
                 queue workers through manage.py; a cron job can fall inside a probe).
                 Every other manage.log line is compared.
The token never reaches here: the probe scrubs it on the host.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

TRACEBACK = "Traceback (most recent call last):"
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
TEXT_MASKS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"/deployments/\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d"), "/deployments/<deploy>"),
    (re.compile(r"/Users/\d+"), "/Users/<id>"),
    (re.compile(r"\(realm_id, name\)=\(\d+, "), "(realm_id, name)=(<id>, "),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "<address>"),
]
DATE_KEYS = ("created", "lastModified")
OWNER_KEYS = ("userName", "name", "displayName")


def mask_text(text: str) -> str:
    for pattern, replacement in TEXT_MASKS:
        text = pattern.sub(replacement, text)
    return text


def mask_json(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: mask_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    if key == "id" and isinstance(value, int):
        return "<int id>"  # the type stays checked: Zulip's ids are JSON integers
    if key in DATE_KEYS and isinstance(value, str):
        return "<date>"
    if isinstance(value, str):
        return mask_text(value)
    return value


def body_view(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        return "<empty>"
    try:
        return mask_json(json.loads(stripped))
    except ValueError:
        pass
    if stripped.startswith("<"):
        return "<html page>"
    return "<text>"


def http_view(answer: dict[str, Any]) -> dict[str, Any]:
    headers = answer.get("headers") or {}
    view: dict[str, Any] = {"status": answer.get("status")}
    if answer.get("error"):
        view["error"] = answer["error"]
    for name in ("content-type", "www-authenticate", "location"):
        if name in headers:
            view[name] = mask_text(headers[name])
    view["body"] = body_view(answer.get("body") or "")
    return view


def owners_masked(listing: dict[str, Any]) -> dict[str, Any]:
    """The user list shows the realm owner, whom each installer names differently."""
    body = listing.get("body")
    if isinstance(body, dict):
        for resource in body.get("Resources") or []:
            for key in OWNER_KEYS:
                if key in resource:
                    resource[key] = "<realm owner>"
    return listing


def output_view(text: str) -> str:
    """A command's stdout or stderr: a traceback counts by its last line only."""
    text = ANSI_RE.sub("", text)
    if TRACEBACK in text:
        lines = [line for line in text.splitlines() if line.strip()]
        return f"<traceback> {mask_text(lines[-1])}"
    return mask_text(text)


def command_view(result: dict[str, Any]) -> dict[str, Any]:
    return {"rc": result["rc"], "stdout": output_view(result["stdout"]), "stderr": output_view(result["stderr"])}


def key_line(result: dict[str, Any]) -> str:
    """restart-server's message that matters: its last stdout line, else its last stderr line."""
    for stream in ("stdout", "stderr"):
        lines = [line for line in ANSI_RE.sub("", result[stream]).splitlines() if line.strip()]
        if lines:
            return mask_text(lines[-1])
    return ""


def view(raw: dict[str, Any]) -> dict[str, Any]:
    """Everything that must be equal between a real Zulip and its stand-in."""
    scim = {name: http_view(answer) for name, answer in raw["scim"].items()}
    owners_masked(scim["list_token"])
    return {
        "version": raw["version"],
        "ready": raw["ready"],
        "front_end": raw["front_end"],
        "before": {name: http_view(answer) for name, answer in raw["before"].items()},
        "cli": {name: command_view(result) for name, result in raw["cli"].items()},
        "restart": {name: {"rc": result["rc"], "key_line": key_line(result)}
                    for name, result in raw["restart"].items()},
        "ready_after_restart": raw["ready_after_restart"],
        "scim": scim,
        "manage_log": [mask_text(line) for line in raw["manage_log"]],
    }


def flatten(value: Any, prefix: str = "") -> list[str]:
    """One "path = value" line per leaf, so a diff names exactly what differs."""
    if isinstance(value, dict) and value:
        return [line for key, item in value.items() for line in flatten(item, f"{prefix}.{key}" if prefix else key)]
    if isinstance(value, list) and value:
        return [line for i, item in enumerate(value) for line in flatten(item, f"{prefix}[{i}]")]
    return [f"{prefix} = {json.dumps(value, sort_keys=True)}"]


def diff(real: dict[str, Any], standin: dict[str, Any]) -> list[str]:
    return list(difflib.unified_diff(flatten(real), flatten(standin), "real Zulip", "stand-in", lineterm="", n=0))
