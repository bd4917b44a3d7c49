# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The ``TokenStore`` backend: HashiCorp Vault or OpenBao, a KV version 2 mount.

Layout: one KV v2 secret per host and realm, ``<mount>/<path>/<host>/<realm>``
(the root-domain realm is ``_root``, which no subdomain can be). The secret's
data is the entry exactly as the ansible-vault file holds it (``token``,
``created``, ``state``, ``retired``, ``previous``), so both stores keep the
same history and a token can move between them unchanged. On top of that,
every write is a new KV version: a rotation or a retirement can be undone
with ``bao kv rollback`` / ``vault kv rollback``.

Concurrency is optimistic: every write carries check-and-set (``cas``) with
the version this job read (0 when the secret did not exist). A second job
that read the same version fails that write instead of replacing a token the
first job has just minted; it reports a clear error and overwrites nothing.

``hvac`` is imported only when this store is used (the managed hosts and the
ansible-vault store never need it), and every hvac or HTTP error is turned
into a ``TokenStoreError`` that names the secret and the fix, never a token
and never the server's text (which might quote data).

How it logs in is one of the auth methods of ``_vault_auth.py`` (token,
approle, jwt, kubernetes), prepared when the store is made: a missing role or
an unreadable credential file fails before any request.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import typing as t
from dataclasses import dataclass, field

from ansible_collections.zulip_ops.zulip.plugins.module_utils._tls import cleartext_problem
from ansible_collections.zulip_ops.zulip.plugins.module_utils._token_store_spec import DEFAULT_MOUNT, DEFAULT_PATH
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import (
    Entries,
    TokenStoreError,
    canonical_entry,
    check_host_entries,
    show_key,
)
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth import AUTH_METHOD_NAMES, prepare_login
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._vault_auth_common import VaultLogin

ROOT_REALM_KEY = "_root"
AUTH_METHODS = AUTH_METHOD_NAMES
POLICY_HINT = (
    "the policy needs read, create and update on <mount>/data/<path>/* and read, list on "
    "<mount>/metadata/<path>/* (docs/token-stores.md)"
)


@dataclass(frozen=True)
class VaultSettings:
    """How to reach and authenticate to the server; ``token``, ``secret_id`` and ``jwt`` are secrets.

    ``environ`` is the controller's environment, where the auth methods find
    ``BAO_TOKEN`` / ``VAULT_TOKEN``, ``HOME`` (``~/.vault-token``) and ``jwt_env``.
    """

    url: str
    mount: str = DEFAULT_MOUNT
    path: str = DEFAULT_PATH
    auth_method: str = "token"
    token: str | None = None
    token_file: str | None = None
    role_id: str | None = None
    secret_id: str | None = None
    approle_mount: str = "approle"
    jwt_role: str | None = None
    jwt: str | None = None
    jwt_env: str | None = None
    jwt_file: str | None = None
    jwt_mount: str = "jwt"
    kubernetes_role: str | None = None
    kubernetes_token_file: str | None = None
    kubernetes_mount: str = "kubernetes"
    namespace: str | None = None
    ca_cert: str | None = None
    validate_certs: bool = True
    # Plain http:// to another machine than the controller (the Vault token in clear text): refused unless set.
    allow_insecure_http: bool = False
    timeout: int = 30
    environ: t.Mapping[str, str] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        # A dataclass repr would print the token, the secret_id, the JWT and the environment.
        return "VaultSettings(url=%r, mount=%r, path=%r, auth_method=%r)" % (
            self.url, self.mount, self.path, self.auth_method)


def import_hvac() -> t.Any:
    """The hvac package, or an error that names it (it is needed on the controller only)."""
    try:
        return importlib.import_module("hvac")
    except ImportError:
        raise TokenStoreError(
            "the hashicorp_vault token store needs the Python package hvac on the controller "
            "(pip install hvac, in the Python that runs ansible-playbook, or in the execution "
            "environment); the managed hosts need nothing"
        ) from None


def realm_key(realm: str) -> str:
    return realm or ROOT_REALM_KEY


def realm_of_key(key: str) -> str:
    return "" if key == ROOT_REALM_KEY else key


def _clean_segments(value: str, what: str) -> str:
    segments = [s for s in value.strip().split("/") if s]
    if not segments or any(s in (".", "..") or not s.isprintable() or s != s.strip() for s in segments):
        raise TokenStoreError("%s %s is not a usable KV path (non-empty segments separated by /)" % (what, show_key(value)))
    return "/".join(segments)


def check_settings(settings: VaultSettings) -> VaultLogin:
    """Refuse settings that cannot work, before any request is made; the login they describe."""
    if not settings.url or not settings.url.startswith(("https://", "http://")):
        raise TokenStoreError(
            "hashicorp_vault store: no server address; set url (zulip_scim_vault_url) or BAO_ADDR / VAULT_ADDR, "
            "e.g. https://vault.example.com:8200"
        )
    cleartext = None if settings.allow_insecure_http else cleartext_problem(
        settings.url, "allow_insecure_http (zulip_scim_vault_allow_insecure_http in the scim role)")
    if cleartext:
        raise TokenStoreError(
            "hashicorp_vault store: url (zulip_scim_vault_url, BAO_ADDR or VAULT_ADDR) %s; nothing was sent to it" % cleartext)
    _clean_segments(settings.mount, "mount")
    _clean_segments(settings.path, "path")
    return prepare_login(settings)


class HashiCorpVaultStore:
    """``TokenStore`` in a KV v2 mount of HashiCorp Vault or OpenBao."""

    def __init__(self, settings: VaultSettings) -> None:
        self._login = check_settings(settings)
        self._settings = settings
        self._mount = _clean_segments(settings.mount, "mount")
        self._prefix = _clean_segments(settings.path, "path")
        self.location = "%s %s/%s" % (settings.url.rstrip("/"), self._mount, self._prefix)
        self._client: t.Any = None
        self._hvac: t.Any = None

    # -------------------------------------------------------- TokenStore

    def read_token_hint(self, host: str) -> str:
        return "bao kv get -mount=%s -field=token %s/<realm, %s for the root domain>   (or: vault kv get ...; server %s)" % (
            self._mount, self._host_folder(host), ROOT_REALM_KEY, self._settings.url.rstrip("/"))

    def read(self, host: str) -> Entries:
        entries, _versions = self._load(host)
        return entries

    @contextlib.contextmanager
    def transaction(self, host: str) -> t.Iterator[Entries]:
        before, versions = self._load(host)
        entries = copy.deepcopy(before)
        yield entries
        unknown = sorted(set(before) - set(entries))
        if unknown:  # pragma: no cover - apply_request never drops a realm
            raise TokenStoreError("refusing to delete stored realms %s" % ", ".join(map(repr, unknown)))
        # Sorted: two jobs that race on several realms meet on the same one first.
        for realm in sorted(entries):
            if entries[realm] != before.get(realm):
                self._write(host, realm, entries[realm], versions.get(realm, 0))

    # -------------------------------------------------------- paths

    def secret_path(self, host: str, realm: str) -> str:
        """The secret's path inside the mount (what ``bao kv get -mount=<mount>`` takes)."""
        return "%s/%s" % (self._host_folder(host), realm_key(realm))

    def _host_folder(self, host: str) -> str:
        if not host or "/" in host or host in (".", "..") or not host.isprintable() or host != host.strip():
            raise TokenStoreError("host %s cannot be a KV path segment (no /, no whitespace)" % show_key(host))
        return "%s/%s" % (self._prefix, host)

    def _where(self, path: str) -> str:
        return "%s/%s" % (self._mount, path)

    # -------------------------------------------------------- requests

    def _connect(self) -> t.Any:
        """The authenticated client, made once; checks that the mount is KV version 2."""
        if self._client is not None:
            return self._client
        self._hvac = import_hvac()
        s = self._settings
        verify: t.Any = (s.ca_cert or True) if s.validate_certs else False
        login = self._login
        # Never None: hvac would then read VAULT_TOKEN and ~/.vault-token on its own, past the rules of _vault_auth_token.
        client = self._hvac.Client(url=s.url, token=login.token, namespace=s.namespace or None, verify=verify,
                                   timeout=s.timeout)
        request = login.request
        if request is not None:
            # The login sets the client's token (hvac's use_token).
            self._call(login.what, lambda: request(client), refused=login.refused)
        self._client = client
        self._check_mount()
        return client

    def _check_mount(self) -> None:
        # The endpoint the vault/bao CLI itself asks before "kv get": it tells
        # the mount's engine and version to any token that may use a path in it.
        answer = self._call("reading the mount %s" % self._mount,
                            lambda: self._client.adapter.get("/v1/sys/internal/ui/mounts/%s" % self._mount))
        data = (answer or {}).get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or data.get("type") not in ("kv", "generic"):
            raise TokenStoreError(
                "%s on %s is not a KV secrets engine; mount must name a KV version 2 mount"
                % (self._mount, self._settings.url))
        version = str((data.get("options") or {}).get("version") or "1")
        if version != "2":
            raise TokenStoreError(
                "%s on %s is a KV version %s mount; the token store needs KV version 2 (versions and "
                "check-and-set keep replaced tokens recoverable): choose a KV v2 mount, or upgrade this one "
                "with 'bao kv enable-versioning %s' / 'vault kv enable-versioning %s'"
                % (self._mount, self._settings.url, version, self._mount, self._mount))

    def _call(self, what: str, request: t.Callable[[], t.Any], absent_ok: bool = False, refused: str = "") -> t.Any:
        """Run one request; map every failure to a TokenStoreError (None when absent and ``absent_ok``).

        ``refused``: the request is a login, and this says what the server's refusal (HTTP 400, 401, 403) means.
        """
        hvac = self._hvac or import_hvac()
        requests_exceptions = importlib.import_module("requests.exceptions")
        url = self._settings.url
        login_refusals = (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)
        try:
            return request()
        except login_refusals if refused else ():
            # Never the server's text: it may quote the credential or its claims.
            raise TokenStoreError("%s: %s refused the login: %s; nothing was read or written" % (what, url, refused)) from None
        except hvac.exceptions.InvalidPath:
            if absent_ok:
                return None
            raise TokenStoreError("%s: not found on %s (does the mount exist?)" % (what, url)) from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            raise TokenStoreError(
                "%s: permission denied by %s: the token (%s) is wrong or expired, or its policy does not allow "
                "this; %s" % (what, url, self._login.what, POLICY_HINT)) from None
        except hvac.exceptions.VaultDown:
            raise TokenStoreError("%s: %s is sealed or in maintenance; unseal it and re-run" % (what, url)) from None
        except hvac.exceptions.InvalidRequest as exc:
            if "check-and-set" in str(exc):
                raise TokenStoreError(
                    "%s: another job changed this secret after this job read it (check-and-set); nothing "
                    "was overwritten and the host was not touched: re-run to use the stored token" % what
                ) from None
            raise TokenStoreError("%s: %s refused the request as invalid (HTTP 400)" % (what, url)) from None
        except hvac.exceptions.VaultError as exc:
            raise TokenStoreError("%s: %s answered with an error (%s)" % (what, url, type(exc).__name__)) from None
        except requests_exceptions.SSLError:
            raise TokenStoreError(
                "%s: the TLS certificate of %s is not trusted; give its CA with ca_cert "
                "(zulip_scim_vault_ca_cert) or BAO_CACERT / VAULT_CACERT" % (what, url)) from None
        except (requests_exceptions.ConnectionError, requests_exceptions.Timeout):
            raise TokenStoreError(
                "%s: cannot reach %s (is the server up, and url / BAO_ADDR / VAULT_ADDR right?)" % (what, url)) from None
        except requests_exceptions.RequestException as exc:
            raise TokenStoreError("%s: request to %s failed (%s)" % (what, url, type(exc).__name__)) from None

    def _list_realm_keys(self, host: str) -> list[str]:
        folder = self._host_folder(host)
        client = self._connect()
        answer = self._call("listing %s" % self._where(folder), lambda: client.secrets.kv.v2.list_secrets(
            path=folder, mount_point=self._mount), absent_ok=True)
        keys = ((answer or {}).get("data") or {}).get("keys") or []
        # A key ending in "/" is a folder someone made below the host: not a realm.
        return sorted(k for k in keys if isinstance(k, str) and not k.endswith("/"))

    def _read_secret(self, host: str, realm: str) -> tuple[dict[str, t.Any], int]:
        """The secret's data and current version, validated."""
        path = self.secret_path(host, realm)
        where = self._where(path)
        client = self._connect()
        answer = self._call("reading %s" % where, lambda: client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=self._mount, raise_on_deleted_version=False))
        body = (answer or {}).get("data") or {}
        version = int((body.get("metadata") or {}).get("version") or 0)
        data = body.get("data")
        if data is None:
            raise TokenStoreError(
                "%s: its latest version (%d) is deleted; undelete it (bao kv undelete -mount=%s -versions=%d %s) "
                "or roll back to an older version" % (where, version, self._mount, version, path))
        if not data:
            raise TokenStoreError(
                "%s: the secret is empty; restore the token with bao kv rollback -mount=%s -version=<N> %s "
                "(bao kv metadata get shows the versions)" % (where, self._mount, path))
        check_host_entries({realm: data}, where)
        return data, version

    def _load(self, host: str) -> tuple[Entries, dict[str, int]]:
        entries: Entries = {}
        versions: dict[str, int] = {}
        folder = self._where(self._host_folder(host))
        for key in self._list_realm_keys(host):
            realm = realm_of_key(key)
            # A key that is no subdomain (a typo, "Acme") is refused, as the file store refuses it.
            check_host_entries({realm: {"token": "x", "created": "x", "state": "active"}}, folder)
            entries[realm], versions[realm] = self._read_secret(host, realm)
        return entries, versions

    def _write(self, host: str, realm: str, entry: dict[str, t.Any], read_version: int) -> None:
        path = self.secret_path(host, realm)
        client = self._connect()
        self._call("writing %s" % self._where(path), lambda: client.secrets.kv.v2.create_or_update_secret(
            path=path, secret=canonical_entry(entry), cas=read_version, mount_point=self._mount))
