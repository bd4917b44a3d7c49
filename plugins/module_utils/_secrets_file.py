# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Edit single keys of the ``[secrets]`` section of ``zulip-secrets.conf``.

Zulip reads the file with :mod:`configparser` (strict: a repeated section or
key makes every ``get_secret`` fail), so this follows its rules for what a
section header, a key and a continuation line are, but never re-serialises
the file: only the lines of the keys being set or removed change, every other
byte (comments, other sections, CRLF line ends, odd spacing) stays as it was.

Values never appear in an error message or in :func:`redacted_view`.
"""

from __future__ import annotations

import re

from ansible_collections.zulip_ops.zulip.plugins.module_utils._files import detect_newline, split_lines
from ansible_collections.zulip_ops.zulip.plugins.module_utils._safe_dir import read_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError

SECTION = "secrets"
REDACTED = "<redacted>"

# configparser: a header is "[name]" on a stripped line; "=" and ":" both separate a key.
_HEADER_RE = re.compile(r"^\[(?P<name>.+)\]")
_OPTION_RE = re.compile(r"^(?P<key>[^=:]*?)\s*[=:]\s*(?P<value>.*)$")
_COMMENT_PREFIXES = ("#", ";")


class _Entry:
    """Where a key of the section is: its first line and any continuation lines."""

    def __init__(self, start: int, indent: int, value: str):
        self.start = start
        self.end = start + 1  # exclusive; grows with continuation lines
        self.indent = indent
        self.value = value


class SecretsFile:
    """Lines of the file, and where the ``[secrets]`` section and its keys are."""

    def __init__(self, text: str, path: str = "zulip-secrets.conf"):
        self.path = path
        self.lines = split_lines(text)
        self.newline = detect_newline(self.lines)
        self._index()

    def _index(self) -> None:
        """Find the section and its keys (again, after lines were changed)."""
        self.section_start: int | None = None  # index of the header line
        self.section_end = len(self.lines)  # index after the section
        self.entries: dict[str, list[_Entry]] = {}
        in_section = seen_header = False
        current: _Entry | None = None
        for index, line in enumerate(self.lines):
            stripped = line.strip()
            if not stripped or stripped.startswith(_COMMENT_PREFIXES):
                # configparser skips these without ending a multi-line value.
                continue
            indent = len(line) - len(line.lstrip())
            if current is not None and indent > current.indent:
                current.end = index + 1
                current.value += "\n" + stripped
                continue
            current = None
            header = _HEADER_RE.match(stripped)
            if not header and not seen_header:
                # configparser (so get_secret) refuses this; the line itself may be a secret.
                raise ZulipError("%s:%d: a line before the first [section] header; Zulip cannot read "
                                 "such a file, fix it first" % (self.path, index + 1))
            if header:
                seen_header = True
                if in_section:
                    self.section_end = index
                in_section = header.group("name") == SECTION
                if in_section:
                    if self.section_start is not None:
                        raise ZulipError(
                            "%s:%d: a second [%s] section (the first is at line %d); "
                            "Zulip refuses such a file, merge them"
                            % (self.path, index + 1, SECTION, self.section_start + 1)
                        )
                    self.section_start = index
                    self.section_end = len(self.lines)
                continue
            if not in_section:
                continue
            option = _OPTION_RE.match(stripped)
            if option:
                current = _Entry(index, indent, option.group("value").strip())
                # configparser lower-cases key names.
                self.entries.setdefault(option.group("key").strip().lower(), []).append(current)

    def values(self) -> list[str]:
        """Every value of the section (each key's last one), for hiding them from output."""
        return [self.get(key) or "" for key in self.entries]

    def get(self, key: str) -> str | None:
        found = self.entries.get(key)
        return found[0].value if found else None

    def render(self) -> str:
        return "".join(self.lines)

    def apply(self, updates: dict[str, str | None]) -> bool:
        """Set (str) or remove (None) keys; returns whether any line changed.

        A key that already has the value keeps its line as it is, spacing included.
        """
        changed = False
        new_keys = []
        doomed: set[int] = set()
        for key in sorted(updates):
            value = updates[key]
            found = self.entries.get(key, [])
            if value is not None and len(found) == 1 and found[0].value == value:
                continue
            if value is not None and found:
                # Rewrite the first; any repeats (which Zulip rejects) go.
                self.lines[found[0].start] = self._line(key, value)
                doomed.update(range(found[0].start + 1, found[0].end))
                repeats = found[1:]
            else:
                repeats = found
                if value is not None:
                    new_keys.append(key)
            for entry in repeats:
                doomed.update(range(entry.start, entry.end))
            changed = changed or bool(found)
        if doomed:
            self.lines = [line for i, line in enumerate(self.lines) if i not in doomed]
            self._index()  # the section moved up
        if new_keys:
            self._insert([self._line(key, updates[key]) for key in new_keys])
            changed = True
        # Positions are stale now.
        self._index()
        return changed

    def _line(self, key: str, value: str) -> str:
        return "%s = %s%s" % (key, value, self.newline)

    def _insert(self, new_lines: list[str]) -> None:
        if self.section_start is None:
            _ensure_final_newline(self.lines, self.newline)
            if self.lines and self.lines[-1].strip():
                self.lines.append(self.newline)
            self.lines.append("[%s]%s" % (SECTION, self.newline))
            self.lines.extend(new_lines)
            return
        # After the section's last non-blank line, so the blank line before the next
        # section stays where it is.
        at = self.section_end
        while at > self.section_start + 1 and not self.lines[at - 1].strip():
            at -= 1
        if at == len(self.lines):
            _ensure_final_newline(self.lines, self.newline)
        self.lines[at:at] = new_lines


def read_secrets_file(path: str) -> SecretsFile | None:
    """The secrets file parsed, or None when there is none; the one reader of that file."""
    try:
        found = read_file(path)  # bounded and typed: the zulip user owns the file and its directory
    except OSError as exc:
        raise ZulipError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    if found is None:
        return None
    text = found.content.decode("utf-8", "surrogateescape")
    # As open() in text mode read it before: universal newlines.
    return SecretsFile(text.replace("\r\n", "\n").replace("\r", "\n"), path)


def read_secret(path: str, name: str) -> str | None:
    """A value from ``[secrets]`` (None when not set), as Zulip's get_secret finds it; the file must exist."""
    secrets = read_secrets_file(path)
    if secrets is None:
        raise ZulipError("cannot read %s: No such file or directory" % path)
    return secrets.get(name)


def _ensure_final_newline(lines: list[str], newline: str) -> None:
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline


def redacted_view(before: dict[str, str | None], after: dict[str, str | None]) -> tuple[str, str]:
    """``[secrets]`` as a before/after pair that shows key names, never values.

    ``before``/``after`` map the managed keys to their value (None: absent). A
    key whose value changes is marked so the diff shows it although both sides
    say ``<redacted>``.
    """
    before_lines = ["[%s]\n" % SECTION]
    after_lines = ["[%s]\n" % SECTION]
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is not None:
            before_lines.append("%s = %s\n" % (key, REDACTED))
        if new is None:
            continue
        if old is None:
            note = "  # new value"
        elif old != new:
            note = "  # value changed"
        else:
            note = ""
        after_lines.append("%s = %s%s\n" % (key, REDACTED, note))
    return "".join(before_lines), "".join(after_lines)
