"""A test double of authentik's API for SCIM providers (authentik 2026.8.5, the authentik-client models).

What it does, as authentik does it (sources: authentik's ``schema.yml`` through the
``authentik-client`` models; ``authentik/api/authentication.py``; ``authentik/lib/sync/outgoing``):

- API tokens in ``Authorization: Bearer <key>``. No header, another scheme or an unknown key:
  403 with a GenericError ``detail`` (authentik's token authentication declares no
  ``WWW-Authenticate``, so Django REST framework turns 401 into 403). A key whose user may only
  view providers: 403 on PATCH.
- ``GET /api/v3/providers/scim/{id}/``: the SCIMProvider (``token`` is write-only, never answered);
  404 for an unknown id.
- ``PATCH /api/v3/providers/scim/{id}/``: PatchedSCIMProviderRequest; saving queues a full sync
  (authentik's post_save signal of outgoing sync providers).
- The sync: the double really calls the provider's URL, ``GET <url>/Users?count=1`` with
  ``Authorization: Bearer <token>``, connecting to the address ``resolve`` maps the URL's host to
  (127.0.0.1; no DNS) and trusting ``ca_path``. 200: task ``done``; anything else: ``warning``
  (authentik logs a failed SCIM request, a 401 among them, as a transient error of the object:
  a warning of the task; ``error`` is a stopped sync). One GET stands for the requests a real
  sync makes per user and group.
- ``GET .../sync/status/``: SyncStatus: ``is_running`` while a task runs, ``last_sync_status`` of
  the newest task that is not queued, ``last_successful_sync`` the end of the newest ``done``/``info``.

Every request body and answer is checked strictly against the authentik-client models.
"""

from __future__ import annotations

import datetime
import http.client
import re
import socket
import ssl
import threading
import time
import urllib.parse
from pathlib import Path

from authentik_client.models.generic_error import GenericError
from authentik_client.models.patched_scim_provider_request import PatchedSCIMProviderRequest
from authentik_client.models.scim_provider import SCIMProvider
from authentik_client.models.sync_status import SyncStatus

from json_double import JsonServer

PROVIDER_PATH = re.compile(r"/api/v3/providers/scim/([^/]+)/")
STATUS_PATH = re.compile(r"/api/v3/providers/scim/([^/]+)/sync/status/")
# The write-only field of the request model, kept by the double but never answered.
WRITE_ONLY = ("token",)


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def provider(pk: int, name: str, url: str, auth_mode: str = "token") -> dict:
    """A SCIMProvider as authentik answers it (every required field of the model)."""
    return {
        "pk": pk, "name": name, "property_mappings": [], "property_mappings_group": [],
        "component": "ak-provider-scim-form", "assigned_backchannel_application_slug": "zulip",
        "assigned_backchannel_application_name": "Zulip", "verbose_name": "SCIM Provider",
        "verbose_name_plural": "SCIM Providers", "meta_model_name": "authentik_providers_scim.scimprovider",
        "url": url, "verify_certificates": True, "auth_mode": auth_mode, "auth_oauth": None, "auth_oauth_params": {},
        "auth_oauth_token_last_updated": None, "auth_oauth_token_expires": None, "auth_oauth_url_callback": None,
        "auth_oauth_url_start": None, "compatibility_mode": "default", "service_provider_config_cache_timeout": "hours=1",
        "exclude_users_service_account": False, "sync_page_size": 100, "sync_page_timeout": "minutes=30",
        "discovery_enabled": False, "group_filters": [], "dry_run": False,
    }


class AuthentikDouble(JsonServer):
    """``api_tokens``: key -> "change" (may view and change providers) or "view"."""

    def __init__(self, certificate: tuple[Path, Path], api_tokens: dict[str, str], ca_path: Path | None = None,
                 resolve: dict[str, tuple[str, int]] | None = None, sync_seconds: float = 0.05):
        super().__init__(certificate)
        self.api_tokens = dict(api_tokens)
        self.providers: dict[int, dict] = {}
        self.tokens: dict[int, str] = {}  # the SCIM token each provider holds (write-only in the API)
        self.tasks: dict[int, list[dict]] = {}  # per provider: {"status", "mtime"}, oldest first
        self.running: dict[int, int] = {}
        self.ca_path = ca_path
        self.resolve = dict(resolve or {})
        self.sync_seconds = sync_seconds
        self.sync_calls: list[dict] = []  # every SCIM request a sync made: url, host, status
        self.threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ set-up

    def add_provider(self, pk: int, name: str, url: str, token: str, auth_mode: str = "token",
                     last_sync: str | None = "done") -> None:
        """A provider as an administrator left it; ``last_sync``: the status of a sync that ran before (None: never)."""
        with self.lock:
            self.providers[pk] = provider(pk, name, url, auth_mode)
            self.tokens[pk] = token
            earlier = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).isoformat()
            self.tasks[pk] = [{"status": last_sync, "mtime": earlier}] if last_sync else []

    # ------------------------------------------------------------------ the API

    def handle_json(self, method, path, query, headers, body):
        rights = self._rights(headers.get("Authorization"))
        if isinstance(rights, tuple):
            return rights
        status_match = STATUS_PATH.fullmatch(path)
        provider_match = PROVIDER_PATH.fullmatch(path)
        match = status_match or provider_match
        if match is None:
            return self._error(404, "Not found.")
        pk = int(match.group(1)) if match.group(1).isdigit() else None
        with self.lock:
            if pk not in self.providers:
                return self._error(404, "No SCIMProvider matches the given query.")
            if status_match and method == "GET":
                return self._answer(SyncStatus, 200, self._status(pk))
            if provider_match and method == "GET":
                return self._answer(SCIMProvider, 200, self.providers[pk])
            if provider_match and method == "PATCH":
                if rights != "change":
                    return self._error(403, "You do not have permission to perform this action.")
                return self._patch(pk, body)
        return self._error(405, 'Method "%s" not allowed.' % method)

    def _rights(self, header):
        if not header:
            return self._error(403, "Authentication credentials were not provided.")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer":
            return self._error(403, "Unsupported authentication type")
        if key not in self.api_tokens:
            return self._error(403, "Token invalid/expired")
        return self.api_tokens[key]

    def _patch(self, pk: int, body):
        if not self.check(PatchedSCIMProviderRequest, body, "PATCH body"):
            # authentik's serializer answers 400 with the fields it refused.
            return 400, {"non_field_errors": ["Invalid data."]}
        changes = {key: value for key, value in body.items() if key not in WRITE_ONLY}
        self.providers[pk].update(changes)
        if "token" in body:
            self.tokens[pk] = body["token"]
        self._queue_sync(pk)
        return self._answer(SCIMProvider, 200, self.providers[pk])

    def _answer(self, model, status, body):
        self.check(model, body, "answer to %s" % model.__name__)
        return status, body

    def _error(self, status: int, detail: str):
        return self._answer(GenericError, status, {"detail": detail})

    # ------------------------------------------------------------------ the sync a save queues

    def _status(self, pk: int) -> dict:
        status: dict = {"is_running": self.running.get(pk, 0) > 0}
        done = [task for task in self.tasks[pk] if task["status"] not in ("queued", "consumed")]
        if done:
            status["last_sync_status"] = done[-1]["status"]
        ok = [task for task in self.tasks[pk] if task["status"] in ("done", "info")]
        if ok:
            status["last_successful_sync"] = ok[-1]["mtime"]
        return status

    def _queue_sync(self, pk: int) -> None:
        task = {"status": "queued", "mtime": now_iso()}
        self.tasks[pk].append(task)
        thread = threading.Thread(target=self._run_sync, args=(pk, task), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _run_sync(self, pk: int, task: dict) -> None:
        with self.lock:
            self.running[pk] = self.running.get(pk, 0) + 1
            task.update(status="running", mtime=now_iso())
            url, token = self.providers[pk]["url"], self.tokens[pk]
        time.sleep(self.sync_seconds)
        answer = self._scim_get(url, token)
        with self.lock:
            task.update(status="done" if answer == 200 else "warning", mtime=now_iso())
            self.running[pk] -= 1

    def _scim_get(self, url: str, token: str) -> int | None:
        parsed = urllib.parse.urlsplit(url)
        target = self.resolve.get(parsed.hostname or "")
        record = {"url": url, "token": token, "status": None}
        self.sync_calls.append(record)
        if target is None or parsed.scheme != "https":
            return None  # not a host of this test: the double never leaves 127.0.0.1
        context = ssl.create_default_context(cafile=str(self.ca_path) if self.ca_path else None)
        connection = http.client.HTTPSConnection(parsed.hostname, target[1], context=context, timeout=10)
        try:
            # Connect to the mapped address, but check the certificate against the URL's host, as authentik would.
            connection.sock = context.wrap_socket(socket.create_connection(target, timeout=10),
                                                  server_hostname=parsed.hostname)
            connection.request("GET", parsed.path.rstrip("/") + "/Users?count=1",
                               headers={"Host": parsed.netloc, "Authorization": "Bearer " + token,
                                        "Accept": "application/scim+json"})
            record["status"] = connection.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            record["error"] = type(exc).__name__
        finally:
            connection.close()
        return record["status"]

    def wait_for_syncs(self, timeout: float = 10) -> None:
        for thread in list(self.threads):
            thread.join(timeout)
