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
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError, optional_keys_of

BEGIN_MARKER = "# BEGIN zulip_ops.zulip SCIM_CONFIG -- managed by Ansible, edits here are overwritten"
END_MARKER = "# END zulip_ops.zulip SCIM_CONFIG"
SETTING = "SCIM_CONFIG"
# A marker is recognised by its first words, so a reworded remark after them still counts.
_BEGIN_RE = re.compile(r"^# BEGIN zulip_ops\.zulip SCIM_CONFIG(?:\s|$)")
_END_RE = re.compile(r"^# END zulip_ops\.zulip SCIM_CONFIG(?:\s|$)")
_IMPORT_LINE = "from .config import get_secret"
# EXTERNAL_HOST as a plain string literal at the start of a line (a comment may follow).
_EXTERNAL_HOST_RE = re.compile(r"""^EXTERNAL_HOST\s*=\s*["']([^"']+)["']\s*(?:#.*)?$""", re.MULTILINE)
_INDENT = "    "


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

    def __init__(self, data: bytes, path: str):
        self.path = path
        self.data = data
        problem = compile_error(data, path)
        if problem:
            raise ZulipError("%s does not compile, so it was left untouched; fix it first: %s"
                             % (path, problem))
        # surrogateescape: bytes that are not UTF-8 come back out exactly as they came in.
        self.lines = split_lines(data.decode("utf-8", "surrogateescape"))
        self.newline = detect_newline(self.lines)
        self.block = self._find_block()
        tree = compile(data, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        self._check_foreign(tree)
        self.entries = self._read_block() if self.block else {}

    # -- where the block is ---------------------------------------------------

    def _markers(self) -> tuple[list[int], list[int]]:
        """0-based lines of the BEGIN and END markers: real comments only, not text in strings."""
        begins, ends = [], []
        # Text, not bytes: tokenize() would insist on an encoding that compile() let pass
        # in comments. "replace", not surrogates: the C tokenizer of Python 3.12+ refuses
        # those. Either way "\n" stays where it was, so line numbers hold.
        # A BOM is no token and starts no line.
        text = self.data.decode("utf-8", "replace")
        if text.startswith("\ufeff"):
            text = text[1:]
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError) as exc:  # compiled fine, so only in odd corners
            raise ZulipError("%s cannot be tokenized: %s" % (self.path, exc)) from None
        for token in tokens:
            if token.type != tokenize.COMMENT:
                continue
            found = begins if _BEGIN_RE.match(token.string) else ends if _END_RE.match(token.string) else None
            if found is None:
                continue
            row, col = token.start
            if col != 0:
                raise ZulipError("%s:%d: the zulip_ops.zulip SCIM_CONFIG marker must start at the "
                                 "beginning of the line" % (self.path, row))
            found.append(row - 1)
        return begins, ends

    def _find_block(self) -> tuple[int, int] | None:
        begins, ends = self._markers()
        where = ", ".join("%s:%d" % (self.path, i + 1) for i in sorted(begins + ends))
        if len(begins) > 1 or len(ends) > 1:
            raise ZulipError("%s has more than one zulip_ops.zulip SCIM_CONFIG block (markers at %s); "
                             "keep one" % (self.path, where))
        if begins and not ends:
            raise ZulipError("%s:%d: BEGIN marker of the SCIM_CONFIG block without an END marker"
                             % (self.path, begins[0] + 1))
        if ends and not begins:
            raise ZulipError("%s:%d: END marker of the SCIM_CONFIG block without a BEGIN marker"
                             % (self.path, ends[0] + 1))
        if not begins:
            return None
        if ends[0] < begins[0]:
            raise ZulipError("%s: the SCIM_CONFIG block's END marker comes before its BEGIN "
                             "marker (%s)" % (self.path, where))
        return begins[0], ends[0]

    def _in_block(self, lineno: int) -> bool:
        return self.block is not None and self.block[0] < lineno <= self.block[1] + 1

    # -- SCIM_CONFIG set elsewhere ---------------------------------------------

    def _check_foreign(self, tree: ast.AST) -> None:
        lines = sorted({n.lineno for n in _scim_config_writes(tree) if not self._in_block(n.lineno)})
        if lines:
            raise ZulipError(
                "%s sets SCIM_CONFIG outside the block managed by zulip_ops.zulip (%s); the last "
                "assignment in the file wins, so move those realms into the module's 'realms' "
                "option and delete these lines. Nothing was changed."
                % (self.path, ", ".join("%s:%d" % (self.path, n) for n in lines))
            )

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
        lines = list(self.lines)
        if entries or self.block:
            block = render_block(entries, self.newline)
            if self.block:
                lines[self.block[0]:self.block[1] + 1] = block
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

    def text(self, data: bytes | None = None) -> str:
        """Printable text of the file (or of ``data``) for a diff."""
        return (self.data if data is None else data).decode("utf-8", "replace")


def _root_name(node: ast.AST) -> ast.AST:
    """``SCIM_CONFIG["a"]["b"].x`` -> the ``SCIM_CONFIG`` name node."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node


def _is_setting(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == SETTING


def _scim_config_writes(tree: ast.AST) -> list[ast.AST]:
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


def read_external_host(settings_text: str) -> str | None:
    """``EXTERNAL_HOST`` from settings.py when it is a plain string literal (the last one wins)."""
    matches = _EXTERNAL_HOST_RE.findall(settings_text)
    return matches[-1] if matches else None


def external_host_of(settings_path: str, given: str | None = None) -> str:
    """``given``, else EXTERNAL_HOST from settings.py ("" when it is not a plain string)."""
    if given:
        return given
    try:
        with open(settings_path, encoding="utf-8") as handle:
            return read_external_host(handle.read()) or ""
    except OSError as exc:
        raise ZulipError("cannot read %s: %s" % (settings_path, exc.strerror)) from None


def _literal_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _token_reference(node: ast.AST) -> tuple[str, str] | None:
    """("literal", token) or ("secret", name) for a ``bearer_token`` value."""
    literal = _literal_str(node)
    if literal is not None:
        return "literal", literal
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_secret"
            and node.args and _literal_str(node.args[0]) is not None):
        return "secret", _literal_str(node.args[0])
    return None


def _realm_token_reference(entry: ast.AST) -> tuple[str, str] | None:
    if not isinstance(entry, ast.Dict):
        return None
    for key, value in zip(entry.keys, entry.values):
        if _literal_str(key) == "bearer_token":
            return _token_reference(value)
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
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == SETTING and isinstance(node.value, ast.Dict):
                refs = {}
                for key, value in zip(node.value.keys, node.value.values):
                    realm, ref = _literal_str(key), _realm_token_reference(value)
                    if realm is not None and ref is not None:
                        refs[realm] = ref + (value.lineno,)
            elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                  and target.value.id == SETTING):
                realm, ref = _literal_str(target.slice), _realm_token_reference(node.value)
                if realm is not None and ref is not None:
                    refs[realm] = ref + (node.lineno,)
    return refs
