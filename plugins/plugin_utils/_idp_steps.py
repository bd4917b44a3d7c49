# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The steps of a two-sided rotation on the IdP side, for the realms of one host (action zulip_scim_idp).

Which realms are automated: those whose item has ``idp_settings`` and whose IdP has an API
backend (plugin_utils/_idp_apis.py). Every other realm is connected by hand (the sheet).
The base URL the IdP is given is built from the inventory's EXTERNAL_HOST, never from what
the Zulip host's settings.py says: that file is the zulip user's, and an IdP pointed
elsewhere would send its user data and the token there.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.zulip_ops.zulip.plugins.module_utils._idps import idp_of
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_http import realm_host
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError, check_external_host, realm_label
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_apis
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpBackend, IdpError, IdpRealm, IdpState

EXTERNAL_HOST_VARIABLE = "zulip_scim_external_host"


@dataclasses.dataclass
class AutomatedRealm:
    realm: IdpRealm
    backend: IdpBackend
    state: IdpState | None = None

    @property
    def label(self) -> str:
        return "realm %s (%s)" % (realm_label(self.realm.subdomain), self.realm.idp)


def base_url(subdomain: str, external_host: str) -> str:
    return "https://%s/scim/v2" % realm_host(subdomain, external_host)


def _inventory_external_host(external_host: str | None, asking: list[str]) -> str:
    if not external_host:
        raise IdpError(
            "%s: the IdP's base URL comes from the inventory, not from the host's settings.py (which the zulip "
            "user can change): set %s. Nothing was changed" % (", ".join(asking), EXTERNAL_HOST_VARIABLE))
    try:
        return check_external_host(external_host, EXTERNAL_HOST_VARIABLE)
    except ZulipError as exc:
        raise IdpError("%s. Nothing was changed" % exc) from None


def automated_realms(realms: t.Iterable[t.Mapping[str, t.Any]], connections: t.Mapping[str, t.Any],
                     external_host: str | None, environ: t.Mapping[str, str],
                     host_external_host: str | None = None, resumed: t.Collection[str] = ()) -> list[AutomatedRealm]:
    """The realms whose IdP gets their token over its API, each with its connected backend.

    Fails, before any request, when a realm asks for automation that cannot be had: an IdP
    without an API backend, no connection options for its IdP, no EXTERNAL_HOST in the
    inventory, or a host whose settings.py names another EXTERNAL_HOST than the inventory.
    """
    asking = [item for item in realms if item.get("state", "present") == "present" and item.get("idp_settings")]
    if not asking:
        return []
    labels = ["realm %s" % realm_label(str(item["subdomain"])) for item in asking]
    external = _inventory_external_host(external_host, labels)
    if host_external_host and host_external_host.lower() != external.lower():
        raise IdpError(
            "the host's settings.py says EXTERNAL_HOST %r, the inventory (%s) %r: no IdP is pointed at either "
            "until they agree. Nothing was changed" % (host_external_host, EXTERNAL_HOST_VARIABLE, external))
    backends: dict[str, IdpBackend] = {}
    found = []
    for item in asking:
        idp = idp_of(item)
        label = "realm %s (%s)" % (realm_label(str(item["subdomain"])), idp)
        if not _idp_apis.automated(idp):
            raise IdpError("%s has idp_settings, but the collection cannot set a %s connection over an API; remove "
                           "idp_settings and connect it by hand (the connection sheet). Nothing was changed"
                           % (label, idp))
        if idp not in backends:
            options = connections.get(idp)
            if not isinstance(options, t.Mapping) or not options:
                raise IdpError("%s has idp_settings, but zulip_scim_idp_connections has no %s entry (its API "
                               "credentials). Nothing was changed" % (label, idp))
            backends[idp] = _idp_apis.connect(idp, options, environ)
        realm = IdpRealm(subdomain=str(item["subdomain"]), idp=idp, base_url=base_url(str(item["subdomain"]), external),
                         settings=dict(item["idp_settings"]), resuming=str(item["subdomain"]) in resumed)
        found.append(AutomatedRealm(realm, backends[idp]))
    return found


def state_to_result(state: IdpState) -> dict[str, t.Any]:
    return {"automated": state.automated, "summary": state.summary, "facts": state.facts}


def state_from_result(value: t.Any, label: str) -> IdpState:
    """A state a ``check`` returned (the role hands it back); refused when it is not one."""
    if not isinstance(value, t.Mapping) or not isinstance(value.get("automated"), bool):
        raise IdpError("%s: no state from an earlier check (operation=check) to go on from" % label)
    facts = value.get("facts") or {}
    if not isinstance(facts, t.Mapping):
        raise IdpError("%s: the state's facts are not a mapping" % label)
    return IdpState(automated=value["automated"], summary=str(value.get("summary", "")), facts=dict(facts))


def step(realm: AutomatedRealm, name: str, call: t.Callable[[], t.Any]) -> t.Any:
    """Run one step, naming the realm and the step when it fails."""
    try:
        return call()
    except IdpError as exc:
        raise IdpError("%s, step %s: %s" % (realm.label, name, exc)) from None
