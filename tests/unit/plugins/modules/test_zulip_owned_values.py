"""Issue 23 through the modules: zulip-owned values are data, and no token is ever in a message.

* settings.py / version.py hold what the zulip user wrote: zulip_scim_preflight reads EXTERNAL_HOST and the
  version from the parsed files, refuses values that are no host or version, and the connection
  sheet (the filter the scim role builds it with) checks them again.
* A token that cannot be a header value (a continuation line in zulip-secrets.conf, a
  rejected_tokens item with a line end) is refused naming the realm, before any request; and
  whatever building or sending a request raises is reported without its text (http.client's
  "Invalid header value b'Bearer ...'" holds the token).

Every outcome (message, result, warnings) is searched for each token and each part of it.
"""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_http as scim_http
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_http import ProbeResult
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_preflight, zulip_scim_check

try:  # the filter is controller code
    from ansible.errors import AnsibleFilterError

    from ansible_collections.zulip_ops.zulip.plugins.filter.scim_sheet import scim_connection_sheet
except ImportError:  # pragma: no cover - only under ansible-test units
    AnsibleFilterError = None
needs_controller = pytest.mark.skipif(AnsibleFilterError is None, reason="controller code (filters) not importable here")

import _module_runner as H  # noqa: E402 - found through conftest.py

pytestmark = pytest.mark.usefixtures("as_root")

ATTACK_LINE = "- API Token: send it to https://attacker.example/collect"
READ = "ansible-vault view inventory/zulip_scim_tokens.vault.yml"
OKTA_REALM = {"subdomain": "acme", "client_name": "okta", "name_formatted_included": False, "state": "present"}
# Halves of tokens that a continuation line (or a line end in a list item) makes into one "token".
HEAD = "Fir5tHalfOfTheAcmeTok3n-0123456789"
TAIL = "Sec0ndHalfOfTheAcmeTok3n-987654321"
OLD_HEAD = "0ldRotatedOutTok3nHead-5555555555"
OLD_TAIL = "0ldRotatedOutTok3nTail-4444444444"
ROOT_TOKEN = "root-Tok3n-fedcba9876543210fedcba9876"
SECRETS = (HEAD, TAIL, OLD_HEAD, OLD_TAIL, ROOT_TOKEN)


def leak(value: str) -> bool:
    """Whether a text shows any token or part of one."""
    return any(secret in value for secret in SECRETS)


def outcome_text(out: H.Outcome) -> str:
    return json.dumps(out.result) + "\n".join(out.warnings)


def reliability(case: str, outcome: str):
    return pytest.mark.reliability(area="bad_input", case=case, outcome=outcome)


# --------------------------------------------------------------------------- a Zulip host's files

class Host:
    """settings.py, zulip-secrets.conf and a deployment with version.py under tmp_path."""

    def __init__(self, root: Path):
        deployment = root / "deployments" / "2026-11-28-15-05-00"
        deployment.mkdir(parents=True)
        self.current = root / "deployments" / "current"
        self.current.symlink_to(deployment)
        self.version_py = deployment / "version.py"
        self.version_py.write_text('import os\n\nZULIP_VERSION = "9.2"\n', encoding="utf-8")
        self.settings = root / "settings.py"
        self.settings.write_text('from .config import get_secret\nEXTERNAL_HOST = "zulip.example.com"\n',
                                 encoding="utf-8")
        self.secrets = root / "zulip-secrets.conf"
        self.secrets.write_text("[secrets]\nsecret_key = django\nscim_bearer_token__root = %s\n" % ROOT_TOKEN,
                                encoding="utf-8")
        self.zulip_conf = root / "zulip.conf"  # absent: the default front end

    def args(self, **extra) -> dict:
        return dict({"deploy_path": str(self.current), "settings_path": str(self.settings),
                     "secrets_path": str(self.secrets), "zulip_conf_path": str(self.zulip_conf)}, **extra)


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


@pytest.fixture
def probe(monkeypatch):
    calls = []

    def fake(api_url, host, token=None, validate_certs=False, timeout=10.0, ca_path=None):
        calls.append(host)
        return ProbeResult(401)
    monkeypatch.setattr(zulip_scim_preflight.scim_http, "probe", fake)
    return calls


def run_info(host: Host, **extra) -> H.Outcome:
    fake = H.FakeRunCommand(H.FakeZulip(version="9.2", realms=("acme",)))
    args = host.args(realms=["acme"], **extra)
    args.pop("secrets_path")
    return H.run_module(zulip_scim_preflight.main, args, run_command=fake)


# --------------------------------------------------------------------------- the connection sheet attack

CRAFTED_SETTINGS = (
    "from .config import get_secret\n"
    'EXTERNAL_HOST = "zulip.example.com"\n'
    'SITE_NOTES = """\n'
    'EXTERNAL_HOST = "zulip.example.com\n' + ATTACK_LINE + '\n'
    '"\n'
    '"""\n'
)
CRAFTED_VERSION = (
    '"""Release notes.\n'
    'ZULIP_VERSION = "9.2\n' + ATTACK_LINE + '\n"\n'
    '"""\n'
    'ZULIP_VERSION = "9.2"\n'
)


@needs_controller
@reliability("a crafted settings.py/version.py docstring that puts a Markdown line into the connection sheet",
             "ignored: EXTERNAL_HOST and the version come from the top-level assignments; the sheet is clean")
def test_a_crafted_docstring_does_not_reach_the_connection_sheet(host, probe):
    host.settings.write_text(CRAFTED_SETTINGS, encoding="utf-8")
    host.version_py.write_text(CRAFTED_VERSION, encoding="utf-8")
    out = run_info(host)
    assert not out.failed, out
    assert out.result["external_host"] == "zulip.example.com"
    assert out.result["version"] == "9.2"
    assert probe == ["acme.zulip.example.com"]
    sheet = scim_connection_sheet([OKTA_REALM], out.result["external_host"], "web1", out.result["version"], READ)
    assert "attacker" not in sheet
    assert [line for line in sheet.splitlines() if "API Token" in line] == [
        "- API Token: `Bearer ` followed by the token of realm acme"]


@pytest.mark.parametrize("setting, value", [
    ("EXTERNAL_HOST", '"zulip.example.com\\n%s"' % ATTACK_LINE),
    ("EXTERNAL_HOST", '"zulip.example.com/scim/v2?x="'),
    ("ZULIP_VERSION", '"9.2\\n%s"' % ATTACK_LINE),
    ("ZULIP_VERSION", '"9.2 [docs](https://attacker.example)"'),
])
@reliability("EXTERNAL_HOST or ZULIP_VERSION set to something that is no host or version",
             "refused before any request or manage.py call, the value shown only as a cut repr")
def test_a_value_that_is_no_host_or_version_stops_zulip_scim_preflight(host, probe, setting, value):
    target = host.settings if setting == "EXTERNAL_HOST" else host.version_py
    target.write_text("import os\n%s = %s\n" % (setting, value), encoding="utf-8")
    out = run_info(host)
    assert out.failed
    message = out.result["msg"]
    shown = host.settings if setting == "EXTERNAL_HOST" else host.current / "version.py"
    assert message.startswith("%s:2: " % shown), message
    assert "\n" not in message  # the value is shown as a repr: it cannot start a line of its own
    assert out.run.calls == [] and probe == []
    assert "external_host" not in out.result and "version" not in out.result


@pytest.mark.parametrize("given", ["zulip.example.com\n" + ATTACK_LINE, "https://zulip.example.com", "a b"])
@reliability("zulip_scim_external_host that is no host[:port]", "refused, naming the variable")
def test_the_inventory_external_host_goes_through_the_same_grammar(host, probe, given):
    out = run_info(host, external_host=given)
    assert out.failed
    assert out.result["msg"].startswith("external_host (zulip_scim_external_host in the scim role): ")
    assert "\n" not in out.result["msg"]
    assert out.run.calls == [] and probe == []


@needs_controller
@pytest.mark.parametrize("external_host, version, rule", [
    ("zulip.example.com\n" + ATTACK_LINE, "9.2", "is not a valid host"),
    ("zulip.example.com", "9.2\n" + ATTACK_LINE, "cannot read a Zulip version"),
    ("zulip.example.com`", "9.2", "is not a valid host"),
])
@reliability("a connection sheet asked for with an EXTERNAL_HOST or version that is no host or version",
             "refused on the controller too (defence in depth), no sheet written")
def test_the_sheet_checks_host_and_version_again(external_host, version, rule):
    with pytest.raises(AnsibleFilterError, match=rule) as info:
        scim_connection_sheet([OKTA_REALM], external_host, "web1", version, READ)
    assert "\n" not in str(info.value)


@needs_controller
def test_the_sheet_takes_a_port_and_the_root_domain():
    sheet = scim_connection_sheet([dict(OKTA_REALM, subdomain="")], "chat.example.org:8443", "web1", "11.0-rc1", READ)
    assert "- Base URL: `https://chat.example.org:8443/scim/v2`" in sheet


# --------------------------------------------------------------------------- no token in any message

@pytest.fixture
def endpoint():
    server = H.LoopbackScimServer({"acme.zulip.example.com": HEAD, "zulip.example.com": ROOT_TOKEN})
    yield server
    server.close()


def run_check(host: Host, **extra) -> H.Outcome:
    return H.run_module(zulip_scim_check.main, host.args(**extra))


@reliability("a zulip-secrets.conf token with a continuation line (a token with a line end)",
             "the realm's check fails naming the realm and the secret, the token is not sent nor shown")
def test_a_continuation_line_in_the_secrets_file_is_never_sent_nor_shown(host, endpoint):
    with open(host.secrets, "a", encoding="utf-8") as handle:
        handle.write("scim_bearer_token_acme = %s\n  %s\n" % (HEAD, TAIL))
    out = run_check(host, realms=["acme", ""], api_url=endpoint.url, attempts=1)
    assert out.failed
    assert not leak(outcome_text(out)), out
    assert out.result["msg"] == (
        "SCIM check failed: realm acme: scim_bearer_token_acme in %s cannot be sent in an Authorization header (the "
        "token contains whitespace, quotes, control or non-ASCII characters); it was not sent" % host.secrets)
    assert out.result["realms"]["acme"] == {}
    assert out.result["realms"][""]["with_token"] == 200  # the other realm is still proven
    assert not any(r["host"] == "acme.zulip.example.com" for r in endpoint.requests)


@pytest.mark.parametrize("rejected", [
    {"acme": ["%s\n%s" % (OLD_HEAD, OLD_TAIL)]},
    {"acme": [ROOT_TOKEN + "-fine-but-old", "%s\r\n%s" % (OLD_HEAD, OLD_TAIL)]},
    {"": "%s %s" % (OLD_HEAD, OLD_TAIL)},
])
@reliability("a rejected_tokens item with a line end or a space", "refused naming the realm and the item, before "
             "any request; the token is not shown")
def test_a_rejected_token_that_cannot_be_a_header_is_refused_before_any_request(host, endpoint, rejected):
    with open(host.secrets, "a", encoding="utf-8") as handle:
        handle.write("scim_bearer_token_acme = %s\n" % HEAD)
    out = run_check(host, realms=["acme"], api_url=endpoint.url, rejected_tokens=rejected, attempts=1)
    assert out.failed
    assert not leak(outcome_text(out)), out
    assert "cannot be sent in an Authorization header" in out.result["msg"]
    assert out.result["msg"].startswith("rejected_tokens[%s][" % ("acme" if "acme" in rejected else '"" (root domain)'))
    assert endpoint.requests == []


def test_probe_itself_refuses_a_token_with_a_line_end_naming_the_host(endpoint):
    with pytest.raises(ZulipError) as info:
        scim_http.probe(endpoint.url, "acme.zulip.example.com", "%s\n%s" % (HEAD, TAIL))
    assert not leak(str(info.value))
    assert str(info.value).startswith("the token for acme.zulip.example.com cannot be sent")
    assert endpoint.requests == []


@pytest.mark.parametrize("host_header", ["acme.zulip.example.com\r\nX-Evil: 1", "acme.zulip.example.com/x", ""])
def test_probe_itself_refuses_a_host_header_that_is_no_host(endpoint, host_header):
    with pytest.raises(ZulipError, match="is not a valid host for the Host header"):
        scim_http.probe(endpoint.url, host_header, HEAD)
    assert endpoint.requests == []


@reliability("http.client refusing a header that holds a token (Invalid header value b'Bearer ...')",
             "reported as the exception's class only, never its text")
def test_what_http_client_raises_about_a_header_is_not_echoed(endpoint, monkeypatch):
    # Without the token check in front, http.client itself refuses the header and quotes it.
    monkeypatch.setattr(scim_http, "check_header_values", lambda host, token: None)
    result = scim_http.probe(endpoint.url, "acme.zulip.example.com", "%s\n%s" % (HEAD, TAIL))
    assert result.status is None
    assert result.error == "ValueError"
    assert not leak(result.describe())
    assert endpoint.requests == []


def _invalid_header_error() -> ValueError:
    connection = http.client.HTTPConnection("127.0.0.1", 9)  # never connects: putheader checks first
    connection.putrequest("GET", "/", skip_host=True)
    try:
        connection.putheader("Authorization", "Bearer %s\n%s" % (HEAD, TAIL))
    except ValueError as exc:
        return exc
    raise AssertionError("http.client accepted a header with a line end")


@pytest.mark.parametrize("exc, expected", [
    (_invalid_header_error(), "ValueError"),
    (http.client.InvalidURL("nonnumeric port: '%s'" % HEAD), "InvalidURL"),
    (http.client.BadStatusLine("HTTP/1.1 %s" % HEAD), "BadStatusLine"),
    (ConnectionRefusedError(111, "Connection refused"), "[Errno 111] Connection refused"),
    (OSError(2, "No such file or directory", "/tmp/" + HEAD), "[Errno 2] No such file or directory"),
    (OSError(113, None), "[Errno 113] EHOSTUNREACH"),
    (OSError("free text %s" % HEAD), "OSError"),
    (TimeoutError("timed out"), "timed out"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] %s" % HEAD), "TLS error: SSLError"),
    (http.client.RemoteDisconnected("Remote end closed connection %s" % HEAD), "RemoteDisconnected"),
])
def test_network_errors_are_fixed_texts(exc, expected):
    text = scim_http._network_error_text(exc)  # pylint: disable=protected-access
    assert text == expected
    assert not leak(text)


def test_http_client_quotes_the_header_it_refuses():
    # Why the exception's text is never shown: the case above is a real leak, not a made-up one.
    assert HEAD in str(_invalid_header_error())
