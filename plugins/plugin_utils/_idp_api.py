# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""What the controller does with an identity provider's API: the shape every IdP backend has.

One backend per IdP, one file each (``_idp_api_<name>.py``), chosen by name in ``_idp_apis.py``.
A backend is made from the operator's connection options (credentials are secrets) and works
on one realm at a time, in the order of a two-sided rotation (docs: the safe order):

1. ``read``: read-only. Wrong credentials, a wrong id or a connection the API cannot set fail
   here (or come back as ``automated=False``), before anything changes anywhere.
2. ``before_zulip``: make the IdP stop sending while Zulip changes its token (Entra: pause the job).
3. (Zulip rotates, restarts, proves the new token 200 and the old one 401.)
4. ``push``: the realm's base URL and new token to the IdP.
5. ``verify``: the IdP proves it can use them (Entra: validateCredentials).
6. ``after``: the IdP sends again (Entra: start the job, which also lifts a quarantine).
``restore`` undoes 2 and 4 with the token in force before, for a run that fails after step 2.
Its token is None for a realm whose IdP was never pushed to (the run failed before step 4),
or had no token before (a first enable): then it undoes step 2 only, and leaves the
connection as it is.

Every call runs on the controller, where the credentials are; never from the Zulip host.
No message of an ``IdpError`` may hold a token or a credential.
"""

from __future__ import annotations

import dataclasses
import typing as t


class IdpError(Exception):
    """An IdP API call failed or was refused; the message names the IdP, the realm and the step,
    never a token or a credential."""


@dataclasses.dataclass(frozen=True)
class IdpRealm:
    """One realm as the IdP is to see it. ``base_url`` comes from the inventory, never from the host."""

    subdomain: str
    idp: str  # the row of module_utils/_idps.py
    base_url: str  # https://<realm host>/scim/v2
    settings: t.Mapping[str, t.Any]  # the realm's ids at the IdP (service principal, provider, app): not secrets
    # The realm's rotation was begun by an earlier run that did not finish (its token was pending in the store
    # when this run began): what that run did to the IdP (Entra: pause the job) is this run's to undo.
    resuming: bool = False


@dataclasses.dataclass
class IdpState:
    """What ``read`` found for a realm; no secret. ``facts`` is the backend's own (job id, whether the
    job ran), handed back to the later steps, so that ``after`` and ``restore`` put back what was."""

    automated: bool  # False: the API cannot set this connection's token (the realm stays manual)
    summary: str  # for the operator: "job Initial running", "provider 3 at https://...", ...
    facts: dict[str, t.Any] = dataclasses.field(default_factory=dict)


class IdpBackend(t.Protocol):
    """One IdP's API, connected with the operator's credentials."""

    name: str

    def read(self, realm: IdpRealm) -> IdpState: ...

    def before_zulip(self, realm: IdpRealm, state: IdpState) -> None: ...

    def push(self, realm: IdpRealm, state: IdpState, token: str) -> None: ...

    def verify(self, realm: IdpRealm, state: IdpState) -> None: ...

    def after(self, realm: IdpRealm, state: IdpState) -> None: ...

    def restore(self, realm: IdpRealm, state: IdpState, token: str | None) -> None: ...


# How a backend is made: its connection options (checked against its OPTIONS) and the controller's
# environment (for credentials an operator exports, like AZURE_CLIENT_SECRET).
BackendFactory = t.Callable[[t.Mapping[str, t.Any], t.Mapping[str, str]], IdpBackend]
