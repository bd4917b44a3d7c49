# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The block of ``/etc/zulip/settings.py`` that holds ``SCIM_CONFIG``.

``settings.py`` is edited by hand and read by Python, so the collection owns
one marked block of it and nothing else: every byte outside the block stays
as it was. The file is parsed, never executed. Every check runs before a new
content is produced, and the new content is compiled before it is returned,
because Zulip's queue worker reloads a changed ``settings.py`` at once and
dies on one that does not compile.

The block (``render_block``)::

    # BEGIN zulip_ops.zulip SCIM_CONFIG -- managed by Ansible, edits here are overwritten
    from .config import get_secret

    SCIM_CONFIG = {
        "acme": {
            "bearer_token": get_secret("scim_bearer_token_acme"),
            "scim_client_name": "okta",
            "name_formatted_included": False,
        },
    }
    # END zulip_ops.zulip SCIM_CONFIG
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from ansible_collections.zulip_ops.zulip.plugins.module_utils._files import detect_newline, split_lines
from ansible_collections.zulip_ops.zulip.plugins.module_utils._python_source import NotPython, top_level_assignments
from ansible_collections.zulip_ops.zulip.plugins.module_utils._safe_dir import read_file
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    HOST_FORM_TEXT,
    ZulipError,
    check_external_host,
    external_host_problem,
    optional_keys_of,
    realm_list,
    show_value,
)

BEGIN_MARKER = "# BEGIN zulip_ops.zulip SCIM_CONFIG -- managed by Ansible, edits here are overwritten"
END_MARKER = "# END zulip_ops.zulip SCIM_CONFIG"
SETTING = "SCIM_CONFIG"
# A marker is recognised by its first words, so a reworded remark after them still counts.
_BEGIN_RE = re.compile(r"^# BEGIN zulip_ops\.zulip SCIM_CONFIG(?:\s|$)")
_END_RE = re.compile(r"^# END zulip_ops\.zulip SCIM_CONFIG(?:\s|$)")
_IMPORT_LINE = "from .config import get_secret"
# EXTERNAL_HOST as a plain string literal at the start of a line (a comment may follow).
_INDENT = "    "
# What stands in a backup for an inline token that a later assignment had overridden (never used).
TOKEN_PLACEHOLDER = "<token removed by zulip_ops.zulip takeover>"
TAKEOVER_HINT = ("set zulip_scim_takeover: true (or run playbooks/takeover_scim.yml; module option takeover=true) "
                 "to move them into the managed block, their tokens into zulip-secrets.conf and the token store; "
                 "docs/takeover.md")


class RealmEntry:
    """One ``SCIM_CONFIG`` entry; ``None`` for an optional key means "not set"."""

    def __init__(self, subdomain: str, secret: str, client_name: str,
                 name_formatted_included: bool = False,
                 create_guests_without_streams: bool | None = None,
                 custom_profile_field_map: dict[str, str] | None = None):
        self.subdomain = subdomain
        self.secret = secret
        self.client_name = client_name
        self.name_formatted_included = name_formatted_included
        self.create_guests_without_streams = create_guests_without_streams
        self.custom_profile_field_map = custom_profile_field_map

    def _fields(self) -> tuple:
        return (self.subdomain, self.secret, self.client_name, self.name_formatted_included,
                self.create_guests_without_streams, self.custom_profile_field_map)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RealmEntry) and self._fields() == other._fields()

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # mutable, compared by value

    def __repr__(self) -> str:
        return "RealmEntry(%r)" % (self._fields(),)

    def optional_keys(self) -> list[str]:
        """The optional keys this entry sets, for the version check."""
        return optional_keys_of(vars(self))


class UnreadableEntry:
    """An entry of the block that is not in the format this module writes (edited by hand)."""

    def __init__(self, subdomain: str, line: int, reason: str):
        self.subdomain = subdomain
        self.line = line
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return False  # never equal: whatever is wanted differs from it

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = None


def py_str(value: str) -> str:
    """A double-quoted Python literal for a printable string, the same on every run."""
    if not isinstance(value, str) or not value.isprintable():
        # Callers validate first; this guards the file against a missed check.
        raise ZulipError("refusing to write a non-printable string into settings.py")
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def render_block(entries: list[RealmEntry], newline: str = "\n") -> list[str]:
    """The block's lines (with line ends), realms sorted by subdomain."""
    i1, i2, i3 = _INDENT, _INDENT * 2, _INDENT * 3
    lines = [BEGIN_MARKER, _IMPORT_LINE, "", "%s = {" % SETTING]
    for entry in sorted(entries, key=lambda e: e.subdomain):
        lines.append("%s%s: {" % (i1, py_str(entry.subdomain)))
        lines.append('%s"bearer_token": get_secret(%s),' % (i2, py_str(entry.secret)))
        lines.append('%s"scim_client_name": %s,' % (i2, py_str(entry.client_name)))
        lines.append('%s"name_formatted_included": %r,' % (i2, bool(entry.name_formatted_included)))
        if entry.create_guests_without_streams is not None:
            lines.append('%s"create_guests_without_streams": %r,'
                         % (i2, bool(entry.create_guests_without_streams)))
        field_map = entry.custom_profile_field_map
        if field_map is not None:
            if field_map:
                lines.append('%s"custom_profile_field_map": {' % i2)
                for key in sorted(field_map):
                    lines.append("%s%s: %s," % (i3, py_str(key), py_str(field_map[key])))
                lines.append("%s}," % i2)
            else:
                lines.append('%s"custom_profile_field_map": {},' % i2)
        lines.append("%s}," % i1)
    lines.append("}")
    lines.append(END_MARKER)
    return [line + newline for line in lines]


def compile_error(data: bytes, path: str) -> str | None:
    """Why ``data`` is not a Python file that compiles, as ``path:line: reason``; None if it is."""
    try:
        compile(data, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return "%s:%s: %s" % (path, exc.lineno or "?", exc.msg)
    except ValueError as exc:  # null bytes, before Python 3.12
        return "%s: %s" % (path, exc)
    return None


class SettingsFile:
    """A parsed ``settings.py``: the block's position and entries, all checks done.

    Raises :class:`ZulipError` when the file cannot be edited safely.
    """

    def __init__(self, data: bytes, path: str, takeover: bool = False):
        self.path = path
        self.data = data
        self.takeover = takeover
        problem = compile_error(data, path)
        if problem:
            raise ZulipError("%s does not compile, so it was left untouched; fix it first: %s"
                             % (path, problem))
        # surrogateescape: bytes that are not UTF-8 come back out exactly as they came in.
        self.lines = split_lines(data.decode("utf-8", "surrogateescape"))
        self.newline = detect_newline(self.lines)
        self.block = self._find_block()
        tree = compile(data, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        # SCIM_CONFIG written by hand outside the block: None when there is none.
        self.hand: HandWritten | None = self._check_foreign(tree)
        self.entries = self._read_block() if self.block else {}

    # -- where the block is ---------------------------------------------------

    def _find_block(self) -> tuple[int, int] | None:
        return find_block(self.data, self.path)

    def _in_block(self, lineno: int) -> bool:
        return self.block is not None and self.block[0] < lineno <= self.block[1] + 1

    # -- SCIM_CONFIG set elsewhere ---------------------------------------------

    def _check_foreign(self, tree: ast.AST) -> HandWritten | None:
        """The hand-written SCIM_CONFIG, when taken over; refused otherwise, or when it cannot be."""
        lines = sorted({n.lineno for n in scim_config_writes(tree) if not self._in_block(n.lineno)})
        if not lines:
            return None
        hand = read_hand_written(tree, self.lines, self._in_block, lines)
        where = ", ".join("%s:%d" % (self.path, n) for n in lines)
        if not self.takeover:
            raise ZulipError(
                "%s sets SCIM_CONFIG by hand, outside the block managed by zulip_ops.zulip (%s), for realms %s "
                "(the last assignment wins, as in Python); %s. Nothing was changed."
                % (self.path, where, realm_list(hand.names), TAKEOVER_HINT)
            )
        if hand.problems:
            raise ZulipError(
                "the hand-written SCIM_CONFIG (%s) cannot be taken over: %s. Nothing was changed."
                % (where, "; ".join("%s:%s" % (self.path, p) for p in hand.problems))
            )
        return hand

    # -- reading the block back -------------------------------------------------

    def _read_block(self) -> dict[str, RealmEntry | UnreadableEntry]:
        begin, end = self.block
        offset = begin + 1  # 1-based line of the block's first inner line, minus one
        source = "".join(self.lines[begin + 1:end])
        try:
            body = ast.parse(source).body
        except (SyntaxError, ValueError, UnicodeError) as exc:
            # Compiles inside the file but not alone: e.g. the body of an "if" above it.
            raise self._block_error(begin + 1, "not valid Python on its own: %s" % exc) from None
        value = None
        for statement in body:
            if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == SETTING):
                value = statement.value
        if value is None:
            return {}
        if not isinstance(value, ast.Dict):
            raise self._block_error(value.lineno + offset, "SCIM_CONFIG is not a dict literal")
        entries: dict[str, RealmEntry | UnreadableEntry] = {}
        for key, item in zip(value.keys, value.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise self._block_error(item.lineno + offset, "a realm key is not a string literal")
            if key.value in entries:
                raise self._block_error(key.lineno + offset, "realm %r appears twice" % key.value)
            entries[key.value] = _read_entry(key.value, item, offset)
        return entries

    def _block_error(self, line: int, reason: str) -> ZulipError:
        return ZulipError("%s:%d: the SCIM_CONFIG block managed by zulip_ops.zulip was edited and "
                          "cannot be read back (%s); fix or delete the block" % (self.path, line, reason))

    # -- the new content -----------------------------------------------------------

    def with_entries(self, entries: list[RealmEntry]) -> bytes:
        """The whole file with the block holding ``entries``, compiled.

        A block that loses its last realm stays, as ``SCIM_CONFIG = {}``:
        before 11.0 a server without any SCIM_CONFIG answers every SCIM
        request with HTTP 500, with an empty one it refuses them with 401.
        """
        # A taken-over hand-written SCIM_CONFIG goes, every assignment of it: the block is the one left.
        dropped = self.hand.line_indexes() if self.hand else set()
        lines = [line for i, line in enumerate(self.lines) if i not in dropped or self._block_index(i)]
        block_at = self.block[0] - sum(1 for i in dropped if i < self.block[0]) if self.block else None
        if entries or self.block:
            block = render_block(entries, self.newline)
            if self.block:
                lines[block_at:block_at + self.block[1] - self.block[0] + 1] = block
            else:
                if lines and not lines[-1].endswith("\n"):
                    lines[-1] += self.newline
                if lines and lines[-1].strip():
                    lines.append(self.newline)  # one blank line before the block
                lines.extend(block)
        data = "".join(lines).encode("utf-8", "surrogateescape")
        problem = compile_error(data, self.path)
        if problem:
            raise ZulipError("the new %s would not compile, so it was not written: %s" % (self.path, problem))
        return data

    def _block_index(self, index: int) -> bool:
        return self.block is not None and self.block[0] <= index <= self.block[1]

    def scrubbed(self, secret_names: dict[str, str]) -> bytes:
        """The file as it was, but every inline token of the hand-written SCIM_CONFIG replaced.

        For a backup that holds no token: a token that is in force becomes
        ``get_secret(<its name in secrets_names>)``, the same value read from
        zulip-secrets.conf, so the backup still works as a settings.py; one
        that a later assignment overrode becomes a placeholder.
        """
        if not self.hand:
            return self.data
        data = self.hand.scrub(self.data, secret_names)
        problem = compile_error(data, self.path)
        if problem:  # a bug here must not leave a broken backup
            raise ZulipError("the backup of %s would not compile, so nothing was written: %s" % (self.path, problem))
        return data

    def text(self, data: bytes | None = None) -> str:
        """Printable text of the file (or of ``data``) for a diff."""
        return (self.data if data is None else data).decode("utf-8", "replace")


def _markers(data: bytes, path: str) -> tuple[list[int], list[int]]:
    """0-based lines of the BEGIN and END markers: real comments only, not text in strings."""
    begins, ends = [], []
    # Text, not bytes: tokenize() would insist on an encoding that compile() let pass
    # in comments. "replace", not surrogates: the C tokenizer of Python 3.12+ refuses
    # those. Either way "\n" stays where it was, so line numbers hold.
    # A BOM is no token and starts no line.
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:  # compiled fine, so only in odd corners
        raise ZulipError("%s cannot be tokenized: %s" % (path, exc)) from None
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        found = begins if _BEGIN_RE.match(token.string) else ends if _END_RE.match(token.string) else None
        if found is None:
            continue
        row, col = token.start
        if col != 0:
            raise ZulipError("%s:%d: the zulip_ops.zulip SCIM_CONFIG marker must start at the "
                             "beginning of the line" % (path, row))
        found.append(row - 1)
    return begins, ends


def find_block(data: bytes, path: str) -> tuple[int, int] | None:
    """0-based lines of the managed block's BEGIN and END markers, None without a block; broken markers fail."""
    begins, ends = _markers(data, path)
    where = ", ".join("%s:%d" % (path, i + 1) for i in sorted(begins + ends))
    if len(begins) > 1 or len(ends) > 1:
        raise ZulipError("%s has more than one zulip_ops.zulip SCIM_CONFIG block (markers at %s); "
                         "keep one" % (path, where))
    if begins and not ends:
        raise ZulipError("%s:%d: BEGIN marker of the SCIM_CONFIG block without an END marker"
                         % (path, begins[0] + 1))
    if ends and not begins:
        raise ZulipError("%s:%d: END marker of the SCIM_CONFIG block without a BEGIN marker"
                         % (path, ends[0] + 1))
    if not begins:
        return None
    if ends[0] < begins[0]:
        raise ZulipError("%s: the SCIM_CONFIG block's END marker comes before its BEGIN "
                         "marker (%s)" % (path, where))
    return begins[0], ends[0]


def _root_name(node: ast.AST) -> ast.AST:
    """``SCIM_CONFIG["a"]["b"].x`` -> the ``SCIM_CONFIG`` name node."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node


def _is_setting(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == SETTING


def scim_config_writes(tree: ast.AST) -> list[ast.AST]:
    """Nodes that bind, change or delete SCIM_CONFIG, in any form Python allows."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == SETTING and isinstance(node.ctx, (ast.Store, ast.Del)):
            # =, :, +=, for ..., with ... as, :=, del
            found.append(node)
        elif (isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del))
              and _is_setting(_root_name(node))):
            # SCIM_CONFIG["x"] = ..., SCIM_CONFIG["x"]["y"] = ..., del SCIM_CONFIG["x"]
            found.append(node)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and _is_setting(_root_name(node.func))):
            # SCIM_CONFIG.update(...), SCIM_CONFIG["x"].setdefault(...)
            found.append(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (alias.asname or alias.name) == SETTING for alias in node.names):
            found.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == SETTING:
            found.append(node)
    return found


# -- a SCIM_CONFIG written by hand, the way Zulip's docs say (taken over with takeover=true) ----------


class HandToken:
    """How a hand-written entry gives its token: ``literal`` (the token itself) or ``secret`` (a name)."""

    def __init__(self, kind: str, value: str, line: int):
        self.kind = kind
        self.value = value  # the token (literal) or the secret's name: never put it in a message
        self.line = line
        self.span: tuple[int, int, int, int] | None = None  # where an inline token is, for the backup

    def __repr__(self) -> str:
        return "HandToken(%r, line=%d)" % (self.kind, self.line)  # never the token


class HandEntry:
    """One realm of the SCIM_CONFIG that is in force: its token and its other keys (literals)."""

    def __init__(self, subdomain: str, line: int, token: HandToken, keys: dict):
        self.subdomain = subdomain
        self.line = line
        self.token = token
        self.keys = keys

    def __repr__(self) -> str:
        return "HandEntry(%r, line=%d, %r, keys=%r)" % (self.subdomain, self.line, self.token, sorted(self.keys))


class HandWritten:
    """Every hand-written assignment to SCIM_CONFIG, and the realms the last ones leave in force.

    ``problems`` says, as ``line: reason``, what cannot be taken over safely;
    when it is not empty the rest is incomplete and must not be used.
    """

    def __init__(self):
        self.spans: list[tuple[int, int]] = []  # 1-based first and last line of each assignment
        self.entries: dict[str, HandEntry] = {}
        self.names: list[str] = []  # the realms in force, readable or not, in the file's order
        self.problems: list[str] = []
        # Inline tokens: (line, col, end_line, end_col) in UTF-8 bytes, and the realm if in force.
        self.literals: list[tuple[tuple[int, int, int, int], HandToken, str | None]] = []

    def line_indexes(self) -> set[int]:
        """0-based indexes of every line the assignments take."""
        return {i - 1 for first, last in self.spans for i in range(first, last + 1)}

    def scrub(self, data: bytes, secret_names: dict[str, str]) -> bytes:
        """``data`` with each inline token replaced (see :meth:`SettingsFile.scrubbed`)."""
        starts = _line_starts(data)
        pieces = []
        for (line, col, end_line, end_col), token, realm in sorted(self.literals, key=lambda x: x[0], reverse=True):
            if realm is not None and realm in secret_names:
                text = "get_secret(%s)" % py_str(secret_names[realm])
            else:
                text = py_str(TOKEN_PLACEHOLDER)
            pieces.append((starts[line - 1] + col, starts[end_line - 1] + end_col, text.encode()))
        out = data
        for begin, end, text in pieces:  # from the end, so earlier offsets hold
            out = out[:begin] + text + out[end:]
        if any(realm is not None for _span, _token, realm in self.literals) and not _imports_get_secret(out):
            first = min(first for first, _last in self.spans)
            at = starts[first - 1]
            out = out[:at] + (_IMPORT_LINE + "\n").encode() + out[at:]
        return out


def _line_starts(data: bytes) -> list[int]:
    """Byte offset of each line's start; ast's columns are UTF-8 bytes after a BOM."""
    base = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    starts = [base]
    for index, byte in enumerate(data):
        if byte == 0x0A:
            starts.append(index + 1)
    return starts


def _imports_get_secret(data: bytes) -> bool:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == "get_secret" for a in node.names)
               for node in tree.body)


def _takeover_kind(statement: ast.stmt) -> str | None:
    """``whole`` (SCIM_CONFIG = {...}), ``realm`` (SCIM_CONFIG["x"] = {...}) or None (cannot be taken over)."""
    if isinstance(statement, ast.AnnAssign) and statement.simple and statement.value is not None:
        target = statement.target  # SCIM_CONFIG: dict[str, Any] = {...}
    elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
    else:
        return None
    if _is_setting(target) and isinstance(statement.value, ast.Dict):
        return "whole"
    if (isinstance(target, ast.Subscript) and _is_setting(target.value) and literal_str(target.slice) is not None
            and isinstance(statement.value, ast.Dict)):
        return "realm"
    return None


def _target_of(statement: ast.stmt) -> ast.AST:
    return statement.target if isinstance(statement, ast.AnnAssign) else statement.targets[0]


def _hand_entry(subdomain: str, node: ast.AST, hand: HandWritten) -> HandEntry | None:
    """One realm's dict literal, or None with the reason in ``hand.problems``."""
    realm = "realm %s" % realm_list([subdomain])
    if not isinstance(node, ast.Dict):
        hand.problems.append("%d: %s is not a dict literal" % (node.lineno, realm))
        return None
    token, keys = None, {}
    for key, value in zip(node.keys, node.values):
        name = literal_str(key)
        if name is None:
            hand.problems.append("%d: %s has a key that is not a string literal (or ** unpacking)"
                                 % (value.lineno, realm))
            return None
        if name == "bearer_token":
            token = _hand_token(value)
            if token is None:
                hand.problems.append(
                    "%d: the bearer_token of %s is neither a string nor get_secret(\"name\") (os.environ or "
                    "other Python): the token cannot be known without running settings.py, which the collection "
                    "never does; put the token into zulip-secrets.conf and write get_secret(\"name\") there, then "
                    "run again" % (value.lineno, realm))
                return None
            continue
        try:
            keys[name] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError):
            hand.problems.append("%d: %s: %s is not a literal value" % (value.lineno, realm, name))
            return None
    if token is None:
        hand.problems.append("%d: %s has no bearer_token" % (node.lineno, realm))
        return None
    return HandEntry(subdomain, node.lineno, token, keys)


def _hand_token(node: ast.AST) -> HandToken | None:
    literal = literal_str(node)
    if literal is not None:
        token = HandToken("literal", literal, node.lineno)
        token.span = _span(node)
        return token
    secret = _secret_call(node)
    return HandToken("secret", secret, node.lineno) if secret is not None else None


def _remember_literals(kind: str, value: ast.Dict, hand: HandWritten) -> None:
    """Every inline token of an assignment, in force or not: all of them go from the file."""
    realms = [value] if kind == "realm" else [v for v in value.values if isinstance(v, ast.Dict)]
    for entry in realms:
        for key, item in zip(entry.keys, entry.values):
            if literal_str(key) == "bearer_token" and literal_str(item) is not None:
                hand.literals.append((_span(item), HandToken("literal", item.value, item.lineno), None))


def _span(node: ast.AST) -> tuple[int, int, int, int]:
    return node.lineno, node.col_offset, node.end_lineno, node.end_col_offset


def read_hand_written(tree: ast.Module, lines: list[str], in_block, write_lines: list[int]) -> HandWritten:
    """The hand-written SCIM_CONFIG, run top to bottom the way Python runs it (the last one wins).

    Only top-level ``SCIM_CONFIG = {...}`` and ``SCIM_CONFIG["realm"] = {...}``
    on lines of their own can be taken over; any other write (update(), +=,
    inside an if, ...) is a problem, so is any read of SCIM_CONFIG, which
    would stop working once the setting moves into the block at the end.
    """
    hand = HandWritten()
    taken: set[int] = set()
    occupied: dict[int, int] = {}  # line -> how many top-level statements touch it
    for statement in tree.body:
        for line in range(statement.lineno, statement.end_lineno + 1):
            occupied[line] = occupied.get(line, 0) + 1
    for statement in tree.body:
        if in_block(statement.lineno):
            continue
        lines_of = set(range(statement.lineno, statement.end_lineno + 1))
        if not lines_of & set(write_lines):
            continue
        kind = _takeover_kind(statement)
        if kind is None:
            hand.problems.append("%d: SCIM_CONFIG is changed in a way that cannot be taken over safely (only "
                                 "SCIM_CONFIG = {...} and SCIM_CONFIG[\"realm\"] = {...} at the top level can); "
                                 "rewrite it so, or move it by hand" % statement.lineno)
            continue
        if occupied[statement.lineno] > 1 or occupied[statement.end_lineno] > 1 or any(map(in_block, lines_of)):
            hand.problems.append("%d: the SCIM_CONFIG assignment shares a line with other code; put it on lines "
                                 "of its own" % statement.lineno)
            continue
        taken |= lines_of
        hand.spans.append((statement.lineno, statement.end_lineno))
        _remember_literals(kind, statement.value, hand)
        if kind == "whole":
            hand.entries, hand.names = {}, []
            for key, value in zip(statement.value.keys, statement.value.values):
                subdomain = literal_str(key)
                if subdomain is None:
                    hand.problems.append("%d: a realm key of SCIM_CONFIG is not a string literal" % value.lineno)
                    continue
                _set_hand_entry(hand, subdomain, value)
        else:
            _set_hand_entry(hand, literal_str(_target_of(statement).slice), statement.value)
    for node in ast.walk(tree):
        if (_is_setting(node) and isinstance(node.ctx, ast.Load) and node.lineno not in taken
                and not in_block(node.lineno)):
            hand.problems.append("%d: SCIM_CONFIG is read here, before the managed block that would define it"
                                 % node.lineno)
    _mark_in_force(hand)
    return hand


def _set_hand_entry(hand: HandWritten, subdomain: str, value: ast.AST) -> None:
    if subdomain in hand.names:
        hand.names.remove(subdomain)
    hand.names.append(subdomain)
    hand.entries.pop(subdomain, None)
    entry = _hand_entry(subdomain, value, hand)
    if entry:
        hand.entries[subdomain] = entry


def _mark_in_force(hand: HandWritten) -> None:
    """Tie each inline token in force to its realm: the last assignment of the realm wins."""
    in_force = {entry.token.span: subdomain for subdomain, entry in hand.entries.items()
                if entry.token.kind == "literal"}
    hand.literals = [(span, token, in_force.get(span)) for span, token, _realm in hand.literals]


_BOOL_KEYS = ("name_formatted_included", "create_guests_without_streams")


def _read_entry(subdomain: str, node: ast.AST, offset: int) -> RealmEntry | UnreadableEntry:
    """One realm's entry as this module writes it; anything else is unreadable."""
    line = node.lineno + offset
    if not isinstance(node, ast.Dict):
        return UnreadableEntry(subdomain, line, "not a dict literal")
    fields: dict = {}
    for key, value in zip(node.keys, node.values):
        name = key.value if isinstance(key, ast.Constant) else None
        if name == "bearer_token":
            secret = _secret_call(value)
            if secret is None:
                return UnreadableEntry(subdomain, line, 'bearer_token is not get_secret("...")')
            fields["secret"] = secret
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError):
            return UnreadableEntry(subdomain, line, "%s is not a literal" % name)
        if name == "scim_client_name" and isinstance(literal, str):
            fields["client_name"] = literal
        elif name in _BOOL_KEYS and isinstance(literal, bool):
            fields[name] = literal
        elif name == "custom_profile_field_map" and _is_str_map(literal):
            fields[name] = literal
        else:
            return UnreadableEntry(subdomain, line, "unexpected key or value %r" % (name,))
    if "secret" not in fields or "client_name" not in fields or "name_formatted_included" not in fields:
        return UnreadableEntry(subdomain, line, "a required key is missing")
    return RealmEntry(subdomain, **fields)


def _secret_call(node: ast.AST) -> str | None:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_secret"
            and len(node.args) == 1 and not node.keywords
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return node.args[0].value
    return None


def _is_str_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


# -- other readers of settings.py ------------------------------------------------------


def secret_names_used(data: bytes) -> set[str]:
    """Names of every ``get_secret("name")`` anywhere in a settings.py that compiles."""
    tree = ast.parse(data)
    return {name for name in (_secret_call(node) for node in ast.walk(tree)) if name is not None}


# Where an operator sets the host when settings.py cannot tell it.
EXTERNAL_HOST_OPTION = "external_host (zulip_scim_external_host in the scim role)"


def read_external_host(settings_text: str | bytes, path: str = "settings.py") -> str | None:
    """``EXTERNAL_HOST`` of a settings.py's text, checked; None when it is not set to a plain string.

    What Python would bind last at the top level: a later non-literal assignment makes it
    unknown. Text that only looks like an assignment (in a docstring, a comment, an ``if``) is
    not one. The zulip user writes this file, so the value must be a host[:port]
    (:func:`external_host_problem`) before it goes into a Host header, a result or the
    connection sheet; anything else is refused, shown only as a cut repr.
    """
    try:
        assignments = top_level_assignments(settings_text, "EXTERNAL_HOST")
    except NotPython as exc:
        raise ZulipError("%s does not parse as Python (%s), so its EXTERNAL_HOST cannot be read; fix it, or set %s"
                         % (path, exc, EXTERNAL_HOST_OPTION)) from None
    if not assignments or not assignments[-1].value:
        return None
    last = assignments[-1]
    problem = external_host_problem(last.value)
    if problem:
        raise ZulipError("%s:%d: EXTERNAL_HOST %s is not a valid host (%s): %s; fix it, or set %s"
                         % (path, last.line, show_value(last.value), HOST_FORM_TEXT, problem, EXTERNAL_HOST_OPTION))
    return last.value


def external_host_of(settings_path: str, given: str | None = None) -> str:
    """``given``, else EXTERNAL_HOST from settings.py ("" when it is not a plain string); either checked."""
    if given:
        return check_external_host(given, EXTERNAL_HOST_OPTION)
    return read_external_host(read_zulip_file(settings_path), settings_path) or ""


def read_zulip_file(path: str) -> bytes:
    """A file the zulip user controls (settings.py), bounded and typed (see _safe_dir); it must exist."""
    try:
        found = read_file(path)
    except OSError as exc:
        raise ZulipError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    if found is None:
        raise ZulipError("cannot read %s: No such file or directory" % path)
    return found.content


def literal_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def token_reference(node: ast.AST) -> tuple[str, str] | None:
    """("literal", token) or ("secret", name) for a ``bearer_token`` value."""
    literal = literal_str(node)
    if literal is not None:
        return "literal", literal
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_secret"
            and node.args and literal_str(node.args[0]) is not None):
        return "secret", literal_str(node.args[0])
    return None


def _realm_token_reference(entry: ast.AST) -> tuple[str, str] | None:
    if not isinstance(entry, ast.Dict):
        return None
    for key, value in zip(entry.keys, entry.values):
        if literal_str(key) == "bearer_token":
            return token_reference(value)
    return None


def token_references(source: str) -> dict[str, tuple[str, str, int]]:
    """Per realm, how the final SCIM_CONFIG of a hand-written settings.py refers to its token.

    ("literal", token, line) or ("secret", name, line). Statements run top to
    bottom, so a later ``SCIM_CONFIG = {...}`` replaces everything before it and
    ``SCIM_CONFIG["x"] = {...}`` replaces one realm. Unlike :class:`SettingsFile`,
    which owns the managed block, this reads SCIM_CONFIG wherever it is.
    """
    refs: dict[str, tuple[str, str, int]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]  # SCIM_CONFIG: dict = {...}, as read_hand_written takes it
        elif isinstance(node, ast.Assign):
            targets = node.targets
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id == SETTING and isinstance(node.value, ast.Dict):
                refs = {}
                for key, value in zip(node.value.keys, node.value.values):
                    realm, ref = literal_str(key), _realm_token_reference(value)
                    if realm is not None and ref is not None:
                        refs[realm] = ref + (value.lineno,)
            elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                  and target.value.id == SETTING):
                realm, ref = literal_str(target.slice), _realm_token_reference(node.value)
                if realm is not None and ref is not None:
                    refs[realm] = ref + (node.lineno,)
    return refs
