# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This plugin_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""The ``TokenStore`` backend: one ansible-vault encrypted YAML file.

The whole file is vault-encrypted (not single values), so the operator can
``ansible-vault view`` / ``ansible-vault edit`` it, and a file that leaks
shows neither hosts nor realms.

Concurrency: Ansible runs the action in one process per fork, all against the
same file. Every read-modify-write holds an exclusive ``fcntl.flock`` on the
file's DIRECTORY. Not on the file itself: the file is replaced by
``os.replace`` on every write, so a lock on its inode would protect a file
that no longer is the store. The directory's inode stays put, and no lock file
is left next to the operator's inventory. The same lock keeps two
``ansible-playbook`` runs apart (two operators, or a cron job and an
operator, on one checkout): the second waits ``lock_timeout`` seconds at most,
then fails naming the process that holds the lock, having read, generated and
written nothing. A killed run's lock ends with its process; the temporary
file a run killed in mid-write may leave is removed under the lock.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import tempfile
import typing as t

import yaml
from ansible.errors import AnsibleError
from ansible.parsing.vault import (
    AnsibleVaultFormatError,
    VaultLib,
    VaultSecret,
    is_encrypted,
    match_encrypt_secret,
)

from ansible_collections.zulip_ops.zulip.plugins.module_utils._lock import (
    DEFAULT_TIMEOUT,
    LockTimeout,
    locked_directory,
)
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError
from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._token_store import (
    Entries,
    TokenStoreError,
    canonical_entry,
    check_host_entries,
    show_key,
)

TOP_KEY = "zulip_scim_tokens"
FILE_MODE = 0o600
HEADER = "# Bearer tokens for Zulip SCIM, written by zulip_ops.zulip. View: ansible-vault view %s\n"
NO_SECRET_HINT = "run with --vault-password-file, --ask-vault-pass or --vault-id"

Secrets = t.Sequence[t.Tuple[str, VaultSecret]]
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _without_timestamps(resolvers: dict) -> dict:
    return {first: [(tag, rx) for tag, rx in pairs if tag != _TIMESTAMP_TAG] for first, pairs in resolvers.items()}


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key that appears twice in one mapping (PyYAML would silently keep the last one)."""


# What each YAML error class means, in our own words: PyYAML's own text (problem, context, the
# quoted line) can repeat what the file holds there, e.g. a token used as an alias (*name) or a
# tag (!name), so a message gives the position, the class and this text only.
_YAML_ERROR_MEANINGS = {
    "ScannerError": "characters that cannot start or continue a YAML token (a tab, an unclosed quote, a stray "
                    "character)",
    "ParserError": "the structure is not valid YAML there (indentation, a missing ':' or '-')",
    "ComposerError": "an alias (*name) without its anchor (&name), or more than one document",
    "ConstructorError": "a tag (!name) or a value that plain YAML data cannot hold",
    "DuplicateKeyError": "a key that appears twice in one mapping",
    "ReaderError": "a character that YAML does not allow in a file",
}


class _Loader(yaml.SafeLoader):
    """Safe YAML, with times kept as the strings the file shows.

    Plain ``2026-11-28T16:40:00Z`` would otherwise become a ``datetime`` and
    fail the structure check after an operator's ``ansible-vault edit``.
    Duplicate keys are an error: PyYAML would silently keep the last one.
    """

    yaml_implicit_resolvers = _without_timestamps(yaml.SafeLoader.yaml_implicit_resolvers)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                # The key may be anything an editor typed; show where, not what.
                raise DuplicateKeyError(None, None, "found a duplicate key", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """The loader's twin: times are written plain, as the documented format shows."""

    yaml_implicit_resolvers = _without_timestamps(yaml.SafeDumper.yaml_implicit_resolvers)

    def ignore_aliases(self, data: t.Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key (``previous:``), as the documented format shows.
        return super().increase_indent(flow, False)

    def represent_str(self, data: str) -> yaml.ScalarNode:
        # The root-domain realm: written ``"":`` as the documented format shows.
        if data == "":
            return self.represent_scalar("tag:yaml.org,2002:str", data, style='"')
        return super().represent_str(data)

    def check_simple_key(self) -> bool:
        # PyYAML writes an empty key in the explicit ``? ''`` form; a quoted
        # empty scalar is a perfectly valid simple key.
        if isinstance(self.event, yaml.ScalarEvent) and self.event.value == "":
            return True
        return super().check_simple_key()


_Dumper.add_representer(str, _Dumper.represent_str)


def _parse(text: str, where: str) -> t.Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        # str(exc), exc.problem and exc.context can all quote what the file holds (the line, an
        # alias or a tag name), which may be a token: the position and the error's class only.
        raise TokenStoreError("%s: not valid YAML%s" % (where, _yaml_error_text(exc))) from None


def _yaml_error_text(exc: yaml.YAMLError) -> str:
    """`` at line L, column C (Class: what it means)`` from fixed texts; nothing the file holds.

    A ReaderError (a character YAML does not allow) has no mark, only an offset: no position then.
    """
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = getattr(mark, "line", None)
    column = getattr(mark, "column", None)
    position = " at line %d, column %d" % (line + 1, column + 1) if isinstance(line, int) and isinstance(column, int) else ""
    kind = type(exc).__name__
    meaning = _YAML_ERROR_MEANINGS.get(kind)
    return "%s (%s: %s)" % (position, kind, meaning) if meaning else "%s (%s)" % (position, kind)


def parse_document(text: str, where: str) -> dict[str, Entries]:
    """``{host: {realm: entry}}`` from the decrypted file, validated; ``where`` prefixes messages."""
    doc = _parse(text, where)
    if doc is None:  # an empty file, e.g. fresh from ``ansible-vault create``
        return {}
    if not isinstance(doc, dict):
        raise TokenStoreError("%s: expected a mapping with the key %s, found %s" % (where, TOP_KEY, type(doc).__name__))
    unknown = sorted(show_key(k) for k in doc if k != TOP_KEY)
    if unknown:
        raise TokenStoreError("%s: unknown top-level key(s) %s (only %s is allowed)" % (where, ", ".join(unknown), TOP_KEY))
    hosts = doc.get(TOP_KEY)
    if hosts is None:
        return {}
    if not isinstance(hosts, dict):
        raise TokenStoreError("%s: %s: expected a mapping of host to realms, found %s" % (where, TOP_KEY, type(hosts).__name__))
    for host, entries in hosts.items():
        if not isinstance(host, str) or not host:
            raise TokenStoreError("%s: %s: host names must be non-empty strings, found %s" % (where, TOP_KEY, show_key(host)))
        check_host_entries(entries, "%s: %s[%r]" % (where, TOP_KEY, host))
    return hosts


def render_document(hosts: dict[str, Entries], filename: str) -> str:
    """The file's plaintext: header comment, then hosts and realms sorted (stable diffs)."""
    body = {
        TOP_KEY: {
            host: {realm: canonical_entry(hosts[host][realm]) for realm in sorted(hosts[host])}
            for host in sorted(hosts)
        }
    }
    text = yaml.dump(body, Dumper=_Dumper, default_flow_style=False, sort_keys=False, allow_unicode=True, width=4096)
    return HEADER % filename + text


class VaultFileStore:
    """``TokenStore`` in one ansible-vault encrypted YAML file.

    ``secrets`` are the play's vault secrets (``[(vault_id, VaultSecret)]``).
    A new file is encrypted with the secret Ansible itself would pick
    (``match_encrypt_secret`` honouring ``encrypt_vault_id``, i.e.
    ``DEFAULT_VAULT_ENCRYPT_IDENTITY``); an existing file is re-encrypted with
    the vault id and secret that just decrypted it, so whoever can read it
    today can read it after the write.
    """

    def __init__(self, path: str, secrets: Secrets | None, encrypt_vault_id: str | None = None,
                 lock_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.location = os.path.abspath(path)
        # Write through a symlink to its target instead of replacing the link.
        self._real = os.path.realpath(path)
        self._dir = os.path.dirname(self._real)
        self._secrets = list(secrets or [])
        self._encrypt_vault_id = encrypt_vault_id or None
        self._lock_timeout = lock_timeout

    # -------------------------------------------------------- TokenStore

    def read_token_hint(self, host: str) -> str:
        return 'ansible-vault view %s   (then zulip_scim_tokens > %s > <realm, "" for the root domain> > token)' % (
            self.location, host)

    def read(self, host: str) -> Entries:
        self._check_ready()
        hosts, _used = self._load()
        return copy.deepcopy(hosts.get(host, {}))

    @contextlib.contextmanager
    def transaction(self, host: str) -> t.Iterator[Entries]:
        self._check_ready()
        with self._locked():
            self._remove_stale_temps()
            hosts, used = self._load()
            before = hosts.get(host, {})
            entries = copy.deepcopy(before)
            yield entries
            # Vault encryption is salted: re-encrypting equal content would
            # still change every byte, so unchanged data is not written at all.
            if entries == before:
                return
            if entries:
                hosts[host] = entries
            else:
                hosts.pop(host, None)
            self._save(hosts, used)

    # -------------------------------------------------------- internals

    def _check_ready(self) -> None:
        if not self._secrets:
            raise TokenStoreError(
                "no vault secret: the SCIM token store %s is ansible-vault encrypted; %s"
                % (self.location, NO_SECRET_HINT)
            )
        if not os.path.isdir(self._dir):
            raise TokenStoreError(
                "directory %s does not exist: create it, or set path to a file in an existing directory" % self._dir
            )
        if os.path.isdir(self._real):
            raise TokenStoreError("%s is a directory; path must name the token file" % self.location)

    @contextlib.contextmanager
    def _locked(self) -> t.Iterator[None]:
        try:
            with locked_directory(self._dir, self._lock_timeout, "the SCIM token file %s" % self.location):
                yield
        except LockTimeout as exc:
            raise TokenStoreError(
                "the token file %s is in use by another run: %s. Nothing was read, generated or written"
                % (self.location, exc)
            ) from None
        except ZulipError as exc:
            raise TokenStoreError(str(exc)) from None

    def _remove_stale_temps(self) -> None:
        """Temporary files of a writer killed before its rename (only ever called under the lock)."""
        pattern = re.compile(r"^\.%s\.[A-Za-z0-9_]{8}\.tmp$" % re.escape(os.path.basename(self._real)))
        for name in os.listdir(self._dir):
            candidate = os.path.join(self._dir, name)
            if pattern.match(name) and os.path.isfile(candidate) and not os.path.islink(candidate):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(candidate)

    def _load(self) -> tuple[dict[str, Entries], tuple[str, VaultSecret] | None]:
        """The validated hosts and the (vault id, secret) that decrypted them (None: no file yet)."""
        try:
            with open(self._real, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            raise TokenStoreError("cannot read %s: %s" % (self.location, exc.strerror)) from None
        if not is_encrypted(raw):
            raise TokenStoreError(
                "%s is not ansible-vault encrypted; refusing to read or replace it "
                "(encrypt it with ansible-vault encrypt, or choose another path)" % self.location
            )
        try:
            plain, vault_id, secret = VaultLib(self._secrets).decrypt_and_get_vault_id(raw)
        except AnsibleVaultFormatError:
            raise TokenStoreError("%s is damaged: not a valid ansible-vault envelope" % self.location) from None
        except AnsibleError:
            ids = ", ".join(sorted({vault_id for vault_id, _secret in self._secrets}))
            raise TokenStoreError(
                "cannot decrypt %s with the vault secrets given (vault ids: %s); %s with the password it was "
                "encrypted with" % (self.location, ids, NO_SECRET_HINT)
            ) from None
        try:
            text = plain.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TokenStoreError("%s: not UTF-8 text (byte %d)" % (self.location, exc.start)) from None
        return parse_document(text, self.location), (vault_id, secret)

    def _encrypt_secret(self) -> tuple[str, VaultSecret]:
        try:
            match = match_encrypt_secret(self._secrets, encrypt_vault_id=self._encrypt_vault_id)
        except AnsibleError:
            raise TokenStoreError(
                "no vault secret with the vault id %r to encrypt %s (DEFAULT_VAULT_ENCRYPT_IDENTITY / "
                "ANSIBLE_VAULT_ENCRYPT_IDENTITY); %s" % (self._encrypt_vault_id, self.location, NO_SECRET_HINT)
            ) from None
        return match

    def _save(self, hosts: dict[str, Entries], used: tuple[str, VaultSecret] | None) -> None:
        vault_id, secret = used or self._encrypt_secret()
        text = render_document(hosts, os.path.basename(self.location))
        vaulttext = VaultLib(self._secrets).encrypt(text, secret=secret, vault_id=vault_id)
        self._write_atomic(vaulttext)

    def _write_atomic(self, data: bytes) -> None:
        """Temp file in the same directory, fsync, rename: readers see the old or the new file, never half."""
        try:
            fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(self._real), suffix=".tmp", dir=self._dir)
        except OSError as exc:
            raise TokenStoreError("cannot write in %s: %s" % (self._dir, exc.strerror)) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), FILE_MODE)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._real)
        except BaseException as exc:
            # Never leave a stray temp file behind, whatever interrupted us.
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise TokenStoreError("cannot write %s: %s" % (self.location, exc.strerror)) from None
            raise
        self._sync_dir()

    def _sync_dir(self) -> None:
        # The rename is durable only once the directory entry is on disk.
        try:
            fd = os.open(self._dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:  # pragma: no cover - the directory was just written to
            return
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
            pass
        finally:
            os.close(fd)
