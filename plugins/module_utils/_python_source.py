# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""What a Python file that the ``zulip`` user owns assigns to a name, read from its syntax tree.

``settings.py`` (``EXTERNAL_HOST``) and ``version.py`` (``ZULIP_VERSION``) are
written by the ``zulip`` user, so what they say is data, never trust: they
are parsed, never run, and only a top-level (module body) assignment counts.
A line of text that merely looks like one (in a docstring, a comment, an
indented block) is not an assignment, which a regular expression over the
text cannot tell. The callers validate the value they take before using it.

Pure functions of the file's text: how the file is opened and read is the
caller's business.
"""

from __future__ import annotations

import ast

from dataclasses import dataclass


class NotPython(Exception):
    """The text does not parse as Python; ``line`` (None when unknown) and ``reason`` say why."""

    def __init__(self, line: int | None, reason: str):
        super().__init__("line %s: %s" % (line or "?", reason))
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Assignment:
    """One top-level assignment of a name: its line, and its value when that is a plain string literal."""

    line: int
    # None: anything but a plain string literal (a call, an f-string, a concatenation, += ...).
    value: str | None


def _parse(source: str | bytes) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as exc:  # IndentationError and TabError too
        raise NotPython(exc.lineno, exc.msg) from None
    except ValueError:  # null bytes, before Python 3.12
        raise NotPython(None, "the file contains null bytes") from None
    except (RecursionError, MemoryError):  # nested too deeply to be a settings file
        raise NotPython(None, "the file is nested too deeply to parse") from None


def _binds(target: ast.AST, name: str) -> bool:
    """Whether assigning to ``target`` sets ``name`` (also inside ``a, name = ...``)."""
    if isinstance(target, ast.Name):
        return target.id == name
    if isinstance(target, ast.Starred):
        return _binds(target.value, name)
    if isinstance(target, (ast.Tuple, ast.List)):
        return any(_binds(element, name) for element in target.elts)
    return False


def _string_literal(target: ast.AST, value: ast.AST) -> str | None:
    """The value a plain ``NAME = "..."`` gives; None for unpacking or anything but a str constant."""
    if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


def _assignment(statement: ast.stmt, name: str) -> Assignment | None:
    """What a top-level statement assigns to ``name``, or None when it does not assign it."""
    if isinstance(statement, ast.Assign):
        bound = [target for target in statement.targets if _binds(target, name)]
        if not bound:
            return None
        # "A = NAME = 'x'" binds both to the literal; "NAME, B = ..." is unpacking: not a plain string.
        return Assignment(statement.lineno, _string_literal(bound[-1], statement.value))
    if isinstance(statement, ast.AnnAssign) and statement.value is not None and _binds(statement.target, name):
        return Assignment(statement.lineno, _string_literal(statement.target, statement.value))
    if isinstance(statement, ast.AugAssign) and _binds(statement.target, name):
        return Assignment(statement.lineno, None)
    return None


def top_level_assignments(source: str | bytes, name: str) -> list[Assignment]:
    """Every assignment of ``name`` in the module body of ``source``, in file order.

    Raises :class:`NotPython` when ``source`` does not parse. Statements
    nested in ``if``/``try``/``def``/``class`` bodies do not count: what they
    set depends on running the file, which the collection never does.
    """
    found = []
    for statement in _parse(source).body:
        assignment = _assignment(statement, name)
        if assignment is not None:
            found.append(assignment)
    return found
