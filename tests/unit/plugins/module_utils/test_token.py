# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import secrets

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils._token import (
    MIN_STRONG_LENGTH,
    token_problem,
    token_weakness,
)


@pytest.mark.parametrize("token", [
    "eGTMo9IAAl2JuUrdDAcR8-h2IztPqLXRQSUWk9hS2z0",  # what secrets.token_urlsafe(32) makes
    "a" * MIN_STRONG_LENGTH,
    "short",  # weak, but it can be written
    "!#$%&()*+,-./:;<=>?@[\\]^_`{|}~",
])
def test_writable_tokens(token):
    assert token_problem(token) is None


@pytest.mark.parametrize("token, problem", [
    ("", "the token is empty"),
    (None, "the token is empty"),
    (1234567890123456789, "the token is empty"),
    ("two words-0123456789", "whitespace"),
    ("newline\n-0123456789", "whitespace"),
    ("tab\t-0123456789abc", "whitespace"),
    ("quote\"-0123456789ab", "quotes"),
    ("quote'-0123456789abc", "quotes"),
    ("bell\x07-0123456789ab", "control"),
    ("del\x7f-0123456789abc", "control"),
    ("ünïcødé-0123456789ab", "non-ASCII"),
])
def test_unwritable_tokens_never_quoted(token, problem):
    message = token_problem(token)
    assert message is not None and problem in message
    if isinstance(token, str) and token:
        assert token not in message


def test_generated_tokens_are_writable_and_strong():
    token = secrets.token_urlsafe(32)
    assert token_problem(token) is None and token_weakness(token) is None


def test_weakness_is_length_only():
    assert token_weakness("a" * MIN_STRONG_LENGTH) is None
    assert token_weakness("a" * (MIN_STRONG_LENGTH - 1)) == "the token is shorter than 16 characters"
