# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The proof that a Zulip host takes its SCIM tokens, in one place.

zulip_scim_check makes it after a change; zulip_scim_config makes the same one
itself when it has nothing to change (option check_unchanged), so that a run
with nothing to do needs one module run fewer per host. Each realm's token is
read on the host from the secrets file; only tokens that must be refused
travel as arguments.
"""

from __future__ import annotations

import secrets

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http
from ansible_collections.zulip_ops.zulip.plugins.module_utils._secrets_file import read_secret
from ansible_collections.zulip_ops.zulip.plugins.module_utils._settings_file import external_host_of
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token import token_problem
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ZulipError,
    check_subdomains,
    realm_label,
    secret_name,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip_conf import api_url_of

# While the server restarts behind nginx (502-504), or after a restart while nothing answers yet.
DEFAULT_ATTEMPTS = 10
DEFAULT_DELAY = 2.0


class ProveError(ZulipError):
    """The proof stopped or failed; ``realms`` holds the statuses seen until then, for the task's result."""

    def __init__(self, message: str, realms: dict):
        super().__init__(message)
        self.realms = realms


class CheckFailed(ProveError):
    """A realm's answers were not the expected ones; ``realms`` holds every status seen."""

    def __init__(self, failures: list[str], realms: dict):
        super().__init__("SCIM check failed: " + "; ".join(failures), realms)


class Checker:
    """Asks the front end once per expectation and collects what did not hold."""

    def __init__(self, params: dict, api_url: str, external_host: str, attempts: int, delay: float, after_restart: bool):
        self.params = params
        self.api_url = api_url
        self.external_host = external_host
        self.attempts = attempts
        self.delay = delay
        self.after_restart = after_restart
        self.failures: list[str] = []

    def ask(self, subdomain: str, token: str | None) -> scim_http.ProbeResult:
        result = scim_http.probe_until_settled(
            self.api_url,
            scim_http.realm_host(subdomain, self.external_host),
            token,
            self.params["validate_certs"],
            self.params["timeout"],
            self.attempts,
            self.delay,
            self.after_restart,
            ca_path=self.params.get("ca_path"),
        )
        if result.status is None:
            # Nothing listens there: every further request would fail the same way.
            raise ZulipError(scim_http.no_front_end_message(self.api_url, result.error))
        return result

    def expect(self, subdomain: str, what: str, result: scim_http.ProbeResult, status: int) -> int | None:
        if result.status != status:
            self.failures.append("realm %s: %s got %s, expected HTTP %d" % (realm_label(subdomain), what, result.describe(), status))
        return result.status

    def check_realm(self, subdomain: str, token: str | None) -> dict:
        if not token:
            self.failures.append("realm %s: no %s in %s" % (realm_label(subdomain), secret_name(subdomain), self.params["secrets_path"]))
            return {}
        problem = token_problem(token)
        if problem:
            # The zulip user writes that file: a continuation line there makes a token with a line end.
            self.failures.append("realm %s: %s in %s cannot be sent in an Authorization header (%s); it was not sent"
                                 % (realm_label(subdomain), secret_name(subdomain), self.params["secrets_path"], problem))
            return {}
        return {
            "with_token": self.expect(subdomain, "the stored token", self.ask(subdomain, token), 200),
            "without_token": self.expect(subdomain, "a request without a token", self.ask(subdomain, None), 401),
            "with_wrong_token": self.expect(subdomain, "a random wrong token", self.ask(subdomain, secrets.token_urlsafe(32)), 401),
        }

    def check_rejected(self, subdomain: str, token: str) -> int | None:
        return self.expect(subdomain, "a token that must no longer work", self.ask(subdomain, token), 401)


def rejected_pairs(rejected: dict) -> list[tuple[str, str]]:
    """(subdomain, token) for every token of a rejected_tokens option, in the order given."""
    pairs = []
    for subdomain, tokens in rejected.items():
        for index, token in enumerate(tokens if isinstance(tokens, list) else [tokens]):
            if not isinstance(token, str) or not token:
                raise ZulipError("rejected_tokens[%s]: expected a token or a list of tokens" % realm_label(subdomain))
            problem = token_problem(token)
            if problem:
                # Before any request: the message names the realm and the item, never the token.
                raise ZulipError("rejected_tokens[%s][%d] cannot be sent in an Authorization header (%s); nothing "
                                 "was sent" % (realm_label(subdomain), index, problem))
            pairs.append((subdomain, token))
    return pairs


def read_external_host(params: dict) -> str:
    host = external_host_of(params["settings_path"], params["external_host"])
    if not host:
        raise ZulipError("EXTERNAL_HOST is not a plain string in %s: set external_host" % params["settings_path"])
    return host


def prove(
    params: dict,
    realms: list[str],
    rejected_tokens: dict,
    attempts: int = DEFAULT_ATTEMPTS,
    delay: float = DEFAULT_DELAY,
    after_restart: bool = False,
) -> dict:
    """Each realm's stored token gets HTTP 200, no token and a random one 401, each rejected token 401.

    ``params`` holds the layout and API options of the calling module. Returns the statuses by
    realm; raises CheckFailed (with them) when an expectation failed, ProveError (with those
    seen before) when nothing answers any more, ZulipError when the options are wrong.
    """
    rejected = rejected_pairs(rejected_tokens)
    check_subdomains(list(realms) + [subdomain for subdomain, dummy in rejected])
    api_url = api_url_of(params["api_url"], params["zulip_conf_path"])
    checker = Checker(params, api_url, read_external_host(params), attempts, delay, after_restart)
    results: dict = {}
    try:
        for subdomain in realms:
            results[subdomain] = checker.check_realm(subdomain, read_secret(params["secrets_path"], secret_name(subdomain)))
        for subdomain, token in rejected:
            results.setdefault(subdomain, {}).setdefault("rejected_tokens", []).append(checker.check_rejected(subdomain, token))
    except ZulipError as exc:
        # The realms proven before the front end went away stay in the task's result.
        raise ProveError(str(exc), results) from exc
    if checker.failures:
        raise CheckFailed(checker.failures, results)
    return results
