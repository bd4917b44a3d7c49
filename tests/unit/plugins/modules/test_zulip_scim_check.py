"""Unit tests for plugins/modules/zulip_scim_check.py, run through main().

Most tests replace scim_http.probe with a fake Zulip SCIM endpoint; the last
ones talk to a real endpoint on 127.0.0.1 (LoopbackScimServer).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_http import ProbeResult
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_check


import _module_runner as H  # noqa: E402 - found through conftest.py

EXTERNAL_HOST = "zulip.example.com"
ACME_TOKEN = "acme-Tok3n-0123456789abcdef0123456789"
ROOT_TOKEN = "root-Tok3n-fedcba9876543210fedcba9876"
OLD_TOKEN = "old-rotated-out-token-5555555555555555"
ALL_TOKENS = (ACME_TOKEN, ROOT_TOKEN, OLD_TOKEN)


@pytest.fixture
def files(tmp_path):
    settings = tmp_path / "settings.py"
    settings.write_text("from .config import get_secret\nEXTERNAL_HOST = '%s'\n" % EXTERNAL_HOST, encoding="utf-8")
    secrets_path = tmp_path / "zulip-secrets.conf"
    secrets_path.write_text(
        "[secrets]\n"
        "secret_key = django-secret\n"
        "scim_bearer_token_acme = %s\n"
        "scim_bearer_token__root = %s\n"
        "scim_bearer_token_empty =\n" % (ACME_TOKEN, ROOT_TOKEN),
        encoding="utf-8",
    )
    # No zulip.conf: the front end is the default one (the real /etc/zulip is never read).
    return {"settings_path": str(settings), "secrets_path": str(secrets_path),
            "zulip_conf_path": str(tmp_path / "zulip.conf")}


class FakeScim:
    """Zulip's SCIM auth, per Host: 404 unknown host, 200 for the exact token, else 401."""

    def __init__(self, tokens=None, overrides=None):
        self.tokens = tokens if tokens is not None else {
            "acme.zulip.example.com": ACME_TOKEN, "zulip.example.com": ROOT_TOKEN}
        self.overrides = overrides or {}  # (host, kind) -> status or list of statuses
        self.calls = []

    def __call__(self, api_url, host, token=None, validate_certs=False, timeout=10.0, ca_path=None):
        self.calls.append({"api_url": api_url, "host": host, "token": token,
                           "validate_certs": validate_certs, "timeout": timeout, "ca_path": ca_path})
        kind = "none" if token is None else ("good" if token == self.tokens.get(host) else "wrong")
        if (host, kind) in self.overrides:
            status = self.overrides[(host, kind)]
            if isinstance(status, list):
                status = status.pop(0) if len(status) > 1 else status[0]
            if status is None:
                return ProbeResult(None, error="[Errno 111] Connection refused")
            return ProbeResult(status)
        if host not in self.tokens:
            return ProbeResult(404)
        if kind == "good":
            return ProbeResult(200)
        return ProbeResult(401, www_authenticate='Basic realm="django-scim2"')


@pytest.fixture
def scim(monkeypatch):
    fake = FakeScim()
    monkeypatch.setattr(scim_http, "probe", fake)
    monkeypatch.setattr(scim_http.time, "sleep", lambda s: None)
    return fake


def run(args, files, **kwargs):
    module_args = dict(files)
    module_args.update(args)
    return H.run_module(zulip_scim_check.main, module_args, **kwargs)


def assert_no_secret(out, tokens=ALL_TOKENS):
    text = json.dumps(out.result) + " ".join(out.warnings)
    for token in tokens:
        assert token not in text


# --------------------------------------------------------------------------- success

def test_all_good(files, scim):
    out = run({"realms": ["acme", ""]}, files)
    assert not out.failed, out
    assert out.result["changed"] is False
    assert out.result["realms"] == {
        "acme": {"with_token": 200, "without_token": 401, "with_wrong_token": 401},
        "": {"with_token": 200, "without_token": 401, "with_wrong_token": 401},
    }
    assert out.run.calls == []  # no manage.py, no commands
    assert [c["host"] for c in scim.calls] == ["acme.zulip.example.com"] * 3 + ["zulip.example.com"] * 3
    acme = scim.calls[:3]
    assert acme[0]["token"] == ACME_TOKEN
    assert acme[1]["token"] is None
    assert acme[2]["token"] not in (None, "", ACME_TOKEN, ROOT_TOKEN)
    assert scim.calls[3]["token"] == ROOT_TOKEN
    assert_no_secret(out)


def test_the_wrong_token_is_random_per_call(files, scim):
    run({"realms": ["acme", ""]}, files)
    run({"realms": ["acme"]}, files)
    wrong = [c["token"] for c in scim.calls if c["token"] not in (None, ACME_TOKEN, ROOT_TOKEN)]
    assert len(wrong) == 3
    assert len(set(wrong)) == 3
    assert all(len(w) >= 32 for w in wrong)


def test_parameters_reach_the_probe(files, scim):
    out = run({"realms": ["acme"], "api_url": "https://127.0.0.1:8443", "validate_certs": True, "timeout": 4}, files)
    assert not out.failed, out
    for call in scim.calls:
        assert call["api_url"] == "https://127.0.0.1:8443"
        assert call["validate_certs"] is True
        assert call["timeout"] == 4


def test_defaults(files, scim):
    run({"realms": ["acme"]}, files)
    assert scim.calls[0]["api_url"] == "https://127.0.0.1"
    assert scim.calls[0]["validate_certs"] is False
    assert scim.calls[0]["timeout"] == 10


def test_no_realms_checks_nothing(files, scim):
    out = run({}, files)
    assert not out.failed
    assert out.result["realms"] == {}
    assert scim.calls == []


def test_external_host_option(files, scim):
    scim.tokens = {"acme.chat.example.org": ACME_TOKEN}
    out = run({"realms": ["acme"], "external_host": "chat.example.org", "settings_path": "/nonexistent"}, files)
    assert not out.failed, out
    assert {c["host"] for c in scim.calls} == {"acme.chat.example.org"}


def test_check_mode_sends_the_same_requests(files, scim):
    out = run({"realms": ["acme"]}, files, check_mode=True)
    assert not out.failed
    assert len(scim.calls) == 3


# --------------------------------------------------------------------------- failures

def test_stored_token_refused(files, scim):
    scim.tokens["acme.zulip.example.com"] = "the-server-has-another-token"
    out = run({"realms": ["acme", ""]}, files)
    assert out.failed
    assert out.result["msg"] == "SCIM check failed: realm acme: the stored token got HTTP 401, expected HTTP 200"
    assert out.result["realms"]["acme"] == {"with_token": 401, "without_token": 401, "with_wrong_token": 401}
    assert out.result["realms"][""]["with_token"] == 200
    assert_no_secret(out)


def test_server_accepting_anything_fails(files, scim):
    scim.overrides = {("acme.zulip.example.com", "none"): 200, ("acme.zulip.example.com", "wrong"): 200}
    out = run({"realms": ["acme"]}, files)
    assert out.failed
    msg = out.result["msg"]
    assert "realm acme: a request without a token got HTTP 200, expected HTTP 401" in msg
    assert "realm acme: a random wrong token got HTTP 200, expected HTTP 401" in msg
    assert_no_secret(out)
    wrong = scim.calls[2]["token"]
    assert wrong not in msg  # not even the random token


def test_root_realm_failure_is_labelled(files, scim):
    scim.overrides = {("zulip.example.com", "good"): 500}
    out = run({"realms": [""]}, files)
    assert out.failed
    assert out.result["msg"] == ('SCIM check failed: realm "" (root domain): the stored token got HTTP 500, '
                                 'expected HTTP 200')


def test_unknown_realm_is_404(files, scim):
    with open(files["secrets_path"], "a") as handle:
        handle.write("scim_bearer_token_nope = %s\n" % ACME_TOKEN)
    out = run({"realms": ["nope"]}, files)
    assert out.failed
    assert "realm nope: the stored token got HTTP 404, expected HTTP 200" in out.result["msg"]
    assert out.result["realms"]["nope"] == {"with_token": 404, "without_token": 404, "with_wrong_token": 404}
    assert_no_secret(out)


NO_FRONT_END = ("nothing answers at https://127.0.0.1 ([Errno 111] Connection refused): set api_url "
                "(zulip_scim_api_url in the scim role) to the URL where this host serves Zulip, or check that Zulip runs")


def test_no_answer_fails_at_once_naming_the_url_and_the_variable(files, scim, monkeypatch):
    sleeps = []
    monkeypatch.setattr(scim_http.time, "sleep", sleeps.append)
    scim.overrides = {("acme.zulip.example.com", kind): None for kind in ("good", "none", "wrong")}
    out = run({"realms": ["acme", ""], "attempts": 10}, files)
    assert out.failed
    assert out.result["msg"] == NO_FRONT_END
    assert len(scim.calls) == 1 and sleeps == []  # no retries, no further requests
    assert out.result["realms"] == {}
    assert_no_secret(out)


def test_the_front_end_going_away_keeps_the_realms_proven_before(files, scim):
    scim.overrides = {("zulip.example.com", kind): None for kind in ("good", "none", "wrong")}
    out = run({"realms": ["acme", ""], "rejected_tokens": {"acme": OLD_TOKEN}}, files)
    assert out.failed
    assert out.result["msg"] == NO_FRONT_END
    assert out.result["realms"] == {"acme": {"with_token": 200, "without_token": 401, "with_wrong_token": 401}}
    assert len(scim.calls) == 4  # acme's three, then the root domain's first: nothing more is asked
    assert_no_secret(out)


def test_no_answer_after_a_restart_is_waited_for_then_fails(files, scim, monkeypatch):
    sleeps = []
    monkeypatch.setattr(scim_http.time, "sleep", sleeps.append)
    scim.overrides = {("acme.zulip.example.com", kind): None for kind in ("good", "none", "wrong")}
    out = run({"realms": ["acme"], "attempts": 3, "delay": 0.5, "after_restart": True}, files)
    assert out.failed
    assert out.result["msg"] == NO_FRONT_END
    assert len(scim.calls) == 3 and sleeps == [0.5, 0.5]
    assert_no_secret(out)


def test_server_coming_up_after_a_restart(files, scim):
    scim.overrides = {("acme.zulip.example.com", "good"): [None, None, 200]}
    out = run({"realms": ["acme"], "attempts": 5, "after_restart": True}, files)
    assert not out.failed, out
    assert out.result["realms"]["acme"]["with_token"] == 200
    assert len(scim.calls) == 5


@pytest.mark.parametrize("conf, url", [
    ("[application_server]\nhttp_only = true\nnginx_listen_port = 9991\n", "http://127.0.0.1:9991"),
    ("[application_server]\nhttp_only = true\n", "http://127.0.0.1"),
    ("[application_server]\nnginx_listen_port = 8443\n", "https://127.0.0.1:8443"),
    ("[machine]\ndeploy_type = production\n", "https://127.0.0.1"),
])
def test_api_url_comes_from_zulip_conf(files, scim, conf, url):
    Path(files["zulip_conf_path"]).write_text(conf)
    assert not run({"realms": ["acme"]}, files).failed
    assert {c["api_url"] for c in scim.calls} == {url}


def test_an_explicit_api_url_wins_over_zulip_conf(files, scim):
    Path(files["zulip_conf_path"]).write_text("[application_server]\nhttp_only = true\n")
    assert not run({"realms": ["acme"], "api_url": "https://zulip.internal:8443"}, files).failed
    assert {c["api_url"] for c in scim.calls} == {"https://zulip.internal:8443"}


def test_an_unreadable_zulip_conf_fails_before_requests(files, scim):
    Path(files["zulip_conf_path"]).write_text("[application_server]\nnginx_listen_port = ninety\n")
    out = run({"realms": ["acme"]}, files)
    assert out.failed and "nginx_listen_port = ninety is not a port number" in out.result["msg"]
    assert scim.calls == []


def test_restart_in_progress_is_waited_for(files, scim, monkeypatch):
    sleeps = []
    monkeypatch.setattr(scim_http.time, "sleep", sleeps.append)
    scim.overrides = {("acme.zulip.example.com", "good"): [503, 502, 200]}
    out = run({"realms": ["acme"], "attempts": 5, "delay": 0.5}, files)
    assert not out.failed, out
    assert out.result["realms"]["acme"]["with_token"] == 200
    assert sleeps == [0.5, 0.5]
    assert len(scim.calls) == 5


def test_missing_secret_fails_without_requests_for_that_realm(files, scim):
    out = run({"realms": ["beta", "acme"]}, files)
    assert out.failed
    assert out.result["msg"] == "SCIM check failed: realm beta: no scim_bearer_token_beta in %s" % files["secrets_path"]
    assert out.result["realms"]["beta"] == {}
    assert out.result["realms"]["acme"]["with_token"] == 200
    assert {c["host"] for c in scim.calls} == {"acme.zulip.example.com"}
    assert_no_secret(out)


def test_empty_secret_counts_as_missing(files, scim):
    out = run({"realms": ["empty"]}, files)
    assert out.failed
    assert "realm empty: no scim_bearer_token_empty in" in out.result["msg"]
    assert scim.calls == []


def test_missing_root_secret_names_the_root_secret(files, scim):
    with open(files["secrets_path"], "w") as handle:
        handle.write("[secrets]\nscim_bearer_token_acme = %s\n" % ACME_TOKEN)
    out = run({"realms": [""]}, files)
    assert out.failed
    assert 'realm "" (root domain): no scim_bearer_token__root in' in out.result["msg"]


def test_missing_secrets_file(files, scim, tmp_path):
    out = run({"realms": ["acme"], "secrets_path": str(tmp_path / "missing.conf")}, files)
    assert out.failed
    assert "cannot read %s: No such file or directory" % (tmp_path / "missing.conf") in out.result["msg"]


# --------------------------------------------------------------------------- rejected tokens

def test_rejected_tokens_must_get_401(files, scim):
    out = run({"realms": ["acme"], "rejected_tokens": {"acme": OLD_TOKEN, "": OLD_TOKEN}}, files)
    assert not out.failed, out
    assert out.result["realms"]["acme"]["rejected_tokens"] == [401]
    assert out.result["realms"][""] == {"rejected_tokens": [401]}
    assert [c["token"] for c in scim.calls[3:]] == [OLD_TOKEN, OLD_TOKEN]
    assert [c["host"] for c in scim.calls[3:]] == ["acme.zulip.example.com", "zulip.example.com"]
    assert_no_secret(out)


def test_a_rejected_token_that_still_works_fails_without_naming_it(files, scim):
    # the "old" token is still the one the server accepts: rotation did not happen
    scim.tokens["acme.zulip.example.com"] = OLD_TOKEN
    out = run({"rejected_tokens": {"acme": OLD_TOKEN}}, files)
    assert out.failed
    assert out.result["msg"] == ("SCIM check failed: realm acme: a token that must no longer work got HTTP 200, "
                                 "expected HTTP 401")
    assert out.result["realms"] == {"acme": {"rejected_tokens": [200]}}
    assert_no_secret(out)


def test_several_rejected_tokens_for_one_realm(files, scim):
    out = run({"rejected_tokens": {"acme": ["a" * 40, "b" * 40]}}, files)
    assert not out.failed
    assert out.result["realms"]["acme"]["rejected_tokens"] == [401, 401]


@pytest.mark.parametrize("value", [None, "", ["ok-token-0123456789", 5]])
def test_rejected_token_option_requires_a_token(files, scim, value):
    out = run({"rejected_tokens": {"acme": value}}, files)
    assert out.failed
    assert out.result["msg"] == "rejected_tokens[acme]: expected a token or a list of tokens"
    assert scim.calls == []


def test_an_empty_list_of_rejected_tokens_asks_nothing(files, scim):
    out = run({"rejected_tokens": {"acme": []}}, files)
    assert not out.failed and out.result["realms"] == {}
    assert scim.calls == []


# --------------------------------------------------------------------------- configuration errors

def test_external_host_not_a_literal(files, scim):
    Path(files["settings_path"]).write_text("import os\nEXTERNAL_HOST = os.environ['HOST']\n")
    out = run({"realms": ["acme"]}, files)
    assert out.failed
    assert out.result["msg"] == "EXTERNAL_HOST is not a plain string in %s: set external_host" % files["settings_path"]
    assert out.result["realms"] == {}
    assert scim.calls == []


def test_settings_unreadable(files, scim, tmp_path):
    out = run({"realms": ["acme"], "settings_path": str(tmp_path / "nope.py")}, files)
    assert out.failed
    assert out.result["msg"].startswith("cannot read %s: " % (tmp_path / "nope.py"))
    assert scim.calls == []


@pytest.mark.parametrize("args, bad", [
    ({"realms": ["acme", "Bad"]}, "'Bad'"),
    ({"realms": ["acme"], "rejected_tokens": {"a_b": OLD_TOKEN}}, "'a_b'"),
])
def test_invalid_subdomains_fail_before_requests(files, scim, args, bad):
    out = run(args, files)
    assert out.failed
    assert out.result["msg"].startswith("%s is not a valid Zulip subdomain: " % bad)
    assert scim.calls == []
    assert_no_secret(out)


# --------------------------------------------------------------------------- end to end on 127.0.0.1

@pytest.fixture
def endpoint():
    server = H.LoopbackScimServer({"acme.zulip.example.com": ACME_TOKEN, "zulip.example.com": ROOT_TOKEN,
                                   "beta.zulip.example.com": None})
    yield server
    server.close()


def test_end_to_end_against_a_loopback_endpoint(files, endpoint):
    out = run({"realms": ["acme", ""], "api_url": endpoint.url,
               "rejected_tokens": {"acme": OLD_TOKEN}}, files)
    assert not out.failed, out
    assert out.result["realms"]["acme"] == {"with_token": 200, "without_token": 401, "with_wrong_token": 401,
                                            "rejected_tokens": [401]}
    assert out.result["realms"][""]["with_token"] == 200
    requests = endpoint.requests
    assert [r["host"] for r in requests] == ["acme.zulip.example.com"] * 3 + ["zulip.example.com"] * 3 + [
        "acme.zulip.example.com"]
    assert requests[0]["authorization"] == "Bearer " + ACME_TOKEN
    assert requests[1]["authorization"] is None
    assert requests[2]["authorization"].startswith("Bearer ") and requests[2]["authorization"] != "Bearer " + ACME_TOKEN
    assert requests[6]["authorization"] == "Bearer " + OLD_TOKEN
    assert all(r["path"] == "/scim/v2/Users?count=1" for r in requests)
    assert all(r["www_authenticate"] is None for r in requests)  # only Authorization carries tokens
    assert_no_secret(out)


def test_end_to_end_realm_without_scim_config(files, endpoint):
    with open(files["secrets_path"], "a") as handle:
        handle.write("scim_bearer_token_beta = %s\n" % ACME_TOKEN)
    out = run({"realms": ["beta"], "api_url": endpoint.url, "attempts": 1}, files)
    assert out.failed
    assert out.result["msg"] == "SCIM check failed: realm beta: the stored token got HTTP 401, expected HTTP 200"
    assert_no_secret(out)


def test_runs_as_a_script(files, scim):
    out = H.run_script(zulip_scim_check, dict(files, realms=["acme"]))
    assert not out.failed, out
    assert out.result["realms"]["acme"]["with_token"] == 200
