"""Unit tests for plugins/modules/zulip_scim_preflight.py, run through main()."""

from __future__ import annotations

import os
from pathlib import Path

import json

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _zulip as zulip_utils
from ansible_collections.zulip_ops.zulip.plugins.module_utils._scim_http import ProbeResult
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_preflight


import _module_runner as H  # noqa: E402 - found through conftest.py

pytestmark = pytest.mark.usefixtures("as_root")

EXTERNAL_HOST = "zulip.example.com"


# --------------------------------------------------------------------------- fixtures

class Server:
    """Real files of a Zulip host under tmp_path: a timestamped deployment behind
    a ``current`` symlink, and settings.py."""

    def __init__(self, root: Path):
        self.root = root
        self.deployment = root / "deployments" / "2026-11-28-15-05-00"
        self.deployment.mkdir(parents=True)
        self.current = root / "deployments" / "current"
        self.current.symlink_to(self.deployment)
        self.settings = root / "settings.py"
        self.zulip_conf = root / "zulip.conf"  # absent until a test writes it
        self.set_version("5.6")
        self.settings.write_text(
            "from .config import get_secret\n"
            "ZULIP_ADMINISTRATOR = 'admin@example.com'\n"
            'EXTERNAL_HOST = "%s"\n' % EXTERNAL_HOST,
            encoding="utf-8",
        )

    def set_version(self, version: str):
        (self.deployment / "version.py").write_text(
            'import os\n\nZULIP_VERSION = "%s"\nLATEST_MAJOR_VERSION = "9"\n' % version, encoding="utf-8")

    def args(self, **extra):
        args = {"deploy_path": str(self.current), "settings_path": str(self.settings),
                "zulip_conf_path": str(self.zulip_conf)}
        args.update(extra)
        return args


@pytest.fixture
def server(tmp_path):
    return Server(tmp_path)


class FakeProbe:
    """Stands in for scim_http.probe: status per Host header (missing host: 404)."""

    def __init__(self, statuses: dict):
        self.statuses = statuses
        self.calls = []

    def __call__(self, api_url, host, token=None, validate_certs=False, timeout=10.0, ca_path=None):
        self.calls.append({"api_url": api_url, "host": host, "token": token,
                           "validate_certs": validate_certs, "timeout": timeout, "ca_path": ca_path})
        status = self.statuses.get(host, 404)
        if status is None:
            return ProbeResult(None, error="[Errno 111] Connection refused")
        return ProbeResult(status)

    @property
    def hosts(self):
        return [c["host"] for c in self.calls]


@pytest.fixture
def probe(monkeypatch):
    fake = FakeProbe({})
    monkeypatch.setattr(zulip_scim_preflight.scim_http, "probe", fake)
    return fake


def run(args, zulip=None, **kwargs):
    fake_run = H.FakeRunCommand(zulip if zulip is not None else H.FakeZulip())
    return H.run_module(zulip_scim_preflight.main, args, run_command=fake_run, **kwargs)


# --------------------------------------------------------------------------- reading the server

def test_reads_version_host_and_deployment_without_any_call(server, probe):
    out = run(server.args())
    assert not out.failed, out
    r = out.result
    assert r["changed"] is False
    assert r["version"] == "5.6"
    assert r["version_info"] == [5, 6]
    assert r["deploy_path"] == str(server.deployment)  # the symlink resolved
    assert r["external_host"] == EXTERNAL_HOST
    assert r["realms"] == {}
    assert r["manage_calls"] == []
    assert "realms_available" not in r
    assert out.run.calls == []
    assert probe.calls == []


def test_api_url_without_zulip_conf_is_the_default(server, probe):
    assert run(server.args()).result["api_url"] == "https://127.0.0.1"


def test_api_url_derived_from_zulip_conf_reaches_the_probe(server, probe):
    server.zulip_conf.write_text("[machine]\ndeploy_type = production\n\n"
                                 "[application_server]\nhttp_only = true\nnginx_listen_port = 9991\n")
    probe.statuses = {"acme." + EXTERNAL_HOST: 401}
    out = run(server.args(realms=["acme"]))
    assert not out.failed, out
    assert out.result["api_url"] == "http://127.0.0.1:9991"
    assert [c["api_url"] for c in probe.calls] == ["http://127.0.0.1:9991"]


def test_an_explicit_api_url_is_returned_as_given(server, probe):
    server.zulip_conf.write_text("[application_server]\nhttp_only = true\n")
    out = run(server.args(api_url="https://zulip.internal"))
    assert out.result["api_url"] == "https://zulip.internal"


def test_a_front_end_that_does_not_answer_is_warned_about_by_url(server, probe):
    probe.statuses = {"acme." + EXTERNAL_HOST: None}
    out = run(server.args(realms=["acme"]))
    assert not out.failed, out  # manage.py list_realms still answers
    assert out.result["realms"] == {"acme": True}
    assert len(out.warnings) == 2  # CVE-2022-41914 on 5.6, and the front end
    assert out.warnings[1].startswith("nothing answers at https://127.0.0.1 ([Errno 111] Connection refused)")
    assert "zulip_scim_api_url" in out.warnings[1]


@pytest.mark.reliability(area="fault", case="the front end does not answer (nginx down, wrong port)",
                         outcome="with zulip_scim_verify on, the preflight fails naming the URL and the variable "
                                 "to set, before anything is changed")
def test_a_front_end_that_does_not_answer_fails_when_required(server, probe):
    probe.statuses = {"acme." + EXTERNAL_HOST: None}
    out = run(server.args(realms=["acme"], require_front_end=True))
    assert out.failed
    assert out.result["msg"].startswith("nothing answers at https://127.0.0.1 ([Errno 111] Connection refused)")
    assert "zulip_scim_api_url" in out.result["msg"] and out.result["msg"].endswith("nothing was changed")


def test_a_broken_zulip_conf_fails_before_any_call(server, probe):
    server.zulip_conf.write_text("no section header\n")
    out = run(server.args(realms=["acme"]))
    assert out.failed and out.result["msg"].startswith("cannot read %s: " % server.zulip_conf)
    assert probe.calls == [] and out.run.calls == []


@pytest.mark.parametrize("version, expected", [
    ("5.6", {"client_table": True, "supported_keys": [], "constant_time_tokens": False, "config_default": False}),
    ("5.7", {"client_table": True, "supported_keys": [], "constant_time_tokens": True, "config_default": False}),
    ("6.0", {"client_table": False, "supported_keys": [], "constant_time_tokens": True, "config_default": False}),
    ("9.0", {"client_table": False, "supported_keys": ["create_guests_without_streams"],
             "constant_time_tokens": True, "config_default": False}),
    ("11.2", {"client_table": False, "supported_keys": ["create_guests_without_streams"],
              "constant_time_tokens": True, "config_default": True}),
    ("12.0-dev+git", {"client_table": False,
                      "supported_keys": ["create_guests_without_streams", "custom_profile_field_map"],
                      "constant_time_tokens": True, "config_default": True}),
])
def test_scim_capabilities_per_version(server, probe, version, expected):
    server.set_version(version)
    out = run(server.args())
    assert not out.failed, out
    assert out.result["scim"] == expected
    assert out.result["version"] == version


@pytest.mark.parametrize("version", ["5.0", "5.6"])
def test_cve_warning_on_affected_versions(server, probe, version):
    server.set_version(version)
    out = run(server.args())
    assert not out.failed
    assert len(out.warnings) == 1
    assert "CVE-2022-41914" in out.warnings[0]
    assert "Zulip %s " % version in out.warnings[0]


@pytest.mark.parametrize("version", ["5.7", "6.0", "9.0", "12.0-dev+git"])
def test_no_cve_warning_on_fixed_versions(server, probe, version):
    server.set_version(version)
    out = run(server.args())
    assert not out.failed
    assert out.warnings == []


@pytest.mark.reliability(area="fault", case="no Zulip on the host (no deployment)",
                         outcome="the preflight fails naming the missing version.py, before any change")
def test_missing_version_py_fails_clearly(server, probe):
    os.unlink(server.deployment / "version.py")
    out = run(server.args())
    assert out.failed
    assert out.result["msg"].startswith("no Zulip deployment at %s" % server.current)
    assert out.result["manage_calls"] == []
    assert out.run.calls == []


def test_unreadable_version_fails(server, probe):
    server.set_version("main")
    out = run(server.args())
    assert out.failed
    assert "cannot read a Zulip version from 'main'" in out.result["msg"]


def test_missing_settings_without_external_host_fails(server, probe):
    os.unlink(server.settings)
    out = run(server.args(realms=["acme"]))
    assert out.failed
    assert out.result["msg"].startswith("cannot read %s: " % server.settings)
    assert "No such file" in out.result["msg"]
    assert probe.calls == [] and out.run.calls == []
    assert out.result["manage_calls"] == []


def test_external_host_option_wins_over_settings(server, probe):
    os.unlink(server.settings)  # not even read
    probe.statuses = {"acme.chat.example.org": 401}
    out = run(server.args(external_host="chat.example.org", realms=["acme"]))
    assert not out.failed, out
    assert out.result["external_host"] == "chat.example.org"
    assert probe.hosts == ["acme.chat.example.org"]


def test_last_external_host_assignment_is_used(server, probe):
    server.settings.write_text('EXTERNAL_HOST = "old.example.com"\nEXTERNAL_HOST = "new.example.com"\n')
    out = run(server.args())
    assert out.result["external_host"] == "new.example.com"


# --------------------------------------------------------------------------- realms

def test_realms_found_by_probe_need_no_manage_call(server, probe):
    probe.statuses = {"acme.zulip.example.com": 401, "zulip.example.com": 401, "beta.zulip.example.com": 500}
    out = run(server.args(realms=["acme", "", "beta"], api_url="https://127.0.0.1:8443", validate_certs=True, timeout=3))
    assert not out.failed, out
    assert out.result["realms"] == {"acme": True, "": True, "beta": True}
    assert out.result["manage_calls"] == []
    assert "realms_available" not in out.result
    assert out.run.calls == []
    assert probe.hosts == ["acme.zulip.example.com", "zulip.example.com", "beta.zulip.example.com"]
    for call in probe.calls:
        assert call["api_url"] == "https://127.0.0.1:8443"
        assert call["token"] is None  # existence is asked without a token
        assert call["validate_certs"] is True
        assert call["timeout"] == 3


def test_probe_defaults(server, probe):
    probe.statuses = {"acme.zulip.example.com": 401}
    run(server.args(realms=["acme"]))
    assert probe.calls[0]["api_url"] == "https://127.0.0.1"
    assert probe.calls[0]["validate_certs"] is False
    assert probe.calls[0]["timeout"] == 10


@pytest.mark.reliability(area="fault", case="a realm that does not exist",
                         outcome="the preflight fails naming it and listing the realms the server has")
def test_a_404_runs_list_realms_and_fails_listing_the_realms(server, probe):
    probe.statuses = {"acme.zulip.example.com": 401}
    zulip = H.FakeZulip(realms=("acme", "beta"))
    out = run(server.args(realms=["acme", "nope"]), zulip)
    assert out.failed
    msg = out.result["msg"]
    assert msg == "realm(s) nope do not exist on this Zulip server; it has: acme, beta"
    assert "zulipinternal" not in msg
    assert out.result["realms"] == {"acme": True, "nope": False}
    assert out.result["realms_available"] == ["zulipinternal", "acme", "beta"]
    assert zulip.commands == [["list_realms"]]
    assert out.run.argvs == [["runuser", "-u", "zulip", "--", str(server.current / "manage.py"), "list_realms"]]
    assert out.run.calls[0]["kwargs"]["cwd"] == "/"
    [call] = out.result["manage_calls"]
    assert call["args"] == ["list_realms"] and call["rc"] == 0 and call["seconds"] >= 0


def test_several_missing_realms_are_all_named(server, probe):
    out = run(server.args(realms=["nope", "acme", "gone"]), H.FakeZulip(realms=("acme",)))
    assert out.failed
    assert out.result["msg"].startswith("realm(s) nope, gone do not exist")


def test_only_the_system_realm_says_no_realms(server, probe):
    out = run(server.args(realms=["acme"]), H.FakeZulip(realms=()))
    assert out.failed
    assert out.result["msg"] == "realm(s) acme do not exist on this Zulip server; it has: no realms"


def test_list_realms_overrules_a_misleading_404(server, probe):
    # e.g. nginx routes the host elsewhere: the database is authoritative
    zulip = H.FakeZulip(realms=("acme",))
    out = run(server.args(realms=["acme"]), zulip)
    assert not out.failed, out
    assert out.result["realms"] == {"acme": True}
    assert zulip.commands == [["list_realms"]]


def test_network_failure_falls_back_to_list_realms(server, probe):
    probe.statuses = {"acme.zulip.example.com": None}  # nothing answers
    zulip = H.FakeZulip(realms=("acme",))
    out = run(server.args(realms=["acme"]), zulip)
    assert not out.failed, out
    assert out.result["realms"] == {"acme": True}
    assert out.result["realms_available"] == ["zulipinternal", "acme"]
    assert zulip.commands == [["list_realms"]]


def test_only_one_list_realms_call_for_many_unclear_realms(server, probe):
    zulip = H.FakeZulip(realms=("a", "b", "c"))
    out = run(server.args(realms=["a", "b", "c"]), zulip)
    assert not out.failed
    assert zulip.commands == [["list_realms"]]
    assert len(out.result["manage_calls"]) == 1


def test_no_literal_external_host_skips_the_probe(server, probe):
    server.settings.write_text('import os\nEXTERNAL_HOST = os.environ["ZULIP_HOST"]\n')
    zulip = H.FakeZulip(realms=("acme",))
    out = run(server.args(realms=["acme"]), zulip)
    assert not out.failed, out
    assert out.result["external_host"] == ""
    assert probe.calls == []
    assert zulip.commands == [["list_realms"]]


@pytest.mark.parametrize("bad", ["Acme", "a_b", "a.b", "-a", "a" * 64])
def test_invalid_subdomain_fails_before_any_request(server, probe, bad):
    out = run(server.args(realms=["acme", bad]))
    assert out.failed
    assert out.result["msg"].startswith("%s is not a valid Zulip subdomain: " % zulip_utils.show_value(bad))
    assert probe.calls == [] and out.run.calls == []


@pytest.mark.reliability(area="fault", case="manage.py fails",
                         outcome="the preflight fails with the rc and error of manage.py, before any change")
def test_list_realms_failure_is_reported(server, probe):
    zulip = H.FakeZulip(overrides={"list_realms": (1, H.MANAGE_ROOT_REFUSAL, "")})
    out = run(server.args(realms=["acme"]), zulip)
    assert out.failed
    assert out.result["msg"].startswith("manage.py list_realms failed (rc=1): manage.py should not be run as root")
    assert out.result["manage_calls"][0]["rc"] == 1


def test_list_realms_without_a_table_is_an_error(server, probe):
    zulip = H.FakeZulip(overrides={"list_realms": (0, "Something unexpected\n", "")})
    out = run(server.args(realms=["acme"]), zulip)
    assert out.failed
    assert out.result["msg"] == "manage.py list_realms printed no realm table"


def test_check_mode_reads_the_same(server, probe):
    zulip = H.FakeZulip(realms=("acme",))
    out = run(server.args(realms=["acme"]), zulip, check_mode=True)
    assert not out.failed, out
    assert out.result["changed"] is False
    assert out.result["realms"] == {"acme": True}


def test_as_non_root_manage_py_runs_directly(server, probe, monkeypatch):
    monkeypatch.setattr(zulip_utils.os, "geteuid", lambda: 1000)
    out = run(server.args(realms=["acme"]), H.FakeZulip(realms=("acme",)))
    assert out.run.argvs == [[str(server.current / "manage.py"), "list_realms"]]


# --------------------------------------------------------------------------- list_realms parsing

def test_root_realm_with_an_empty_string_id_column(server, probe):
    zulip = H.FakeZulip(realms=("acme", ""), root_style="empty")
    out = run(server.args(realms=["", "acme"]), zulip)
    assert not out.failed, out
    assert out.result["realms"] == {"": True, "acme": True}
    assert out.result["realms_available"] == ["zulipinternal", "acme", ""]


def test_missing_root_realm_is_labelled(server, probe):
    out = run(server.args(realms=[""]), H.FakeZulip(realms=("acme",)))
    assert out.failed
    assert out.result["msg"] == 'realm(s) "" (root domain) do not exist on this Zulip server; it has: acme'


def test_root_realm_as_real_zulip_prints_it(server, probe):
    zulip = H.FakeZulip(realms=("acme", ""))  # root_style="quotes": the real output
    out = run(server.args(realms=["", "acme"]), zulip)
    assert not out.failed, out.result.get("msg")
    assert out.result["realms_available"] == ["zulipinternal", "acme", ""]


def test_long_string_id_is_not_truncated(server, probe):
    long_id = "engineering-department-emea"  # 27 characters
    out = run(server.args(realms=[long_id]), H.FakeZulip(realms=(long_id,)))
    assert not out.failed, out.result.get("msg")


def test_parse_list_realms_skips_noise_lines():
    output = (
        "2026-11-28 15:05:00.000 WARN [django] some warning\n"
        "id    string_id            name                           domain\n"
        "--    ---------            ----                           ------\n"
        "1     zulipinternal        System bot realm               https://zulipinternal.localhost:9991\n"
        "\n"
        "2     acme                 Acme SCIM Test                 https://acme.localhost:9991\n"
        "\n"
        "Red rows represent deactivated realms.\n"
    )
    assert zulip_scim_preflight.parse_list_realms(output) == ["zulipinternal", "acme"]


# --------------------------------------------------------------------------- design issue

@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_not_proof_that_a_realm_exists(server, probe, status):
    probe.statuses = {"nope.zulip.example.com": status}
    out = run(server.args(realms=["nope"]), H.FakeZulip(realms=("acme",)))
    assert out.failed
    assert "nope" in out.result["msg"]


# --------------------------------------------------------------------------- against a real loopback endpoint

def test_end_to_end_probe_against_loopback_server(server):
    endpoint = H.LoopbackScimServer({"acme.zulip.example.com": "t", "zulip.example.com": None})
    try:
        zulip = H.FakeZulip(realms=("acme",))
        out = run(server.args(realms=["acme", ""], api_url=endpoint.url), zulip)
        assert not out.failed, out
        assert out.result["realms"] == {"acme": True, "": True}
        assert zulip.commands == []
        assert [r["host"] for r in endpoint.requests] == ["acme.zulip.example.com", "zulip.example.com"]
        assert all(r["authorization"] is None for r in endpoint.requests)

        out = run(server.args(realms=["acme", "nope"], api_url=endpoint.url), zulip)
        assert out.failed
        assert zulip.commands == [["list_realms"]]
        assert "realm(s) nope do not exist" in out.result["msg"]
    finally:
        endpoint.close()


def test_runs_as_a_script(server, probe):
    out = H.run_script(zulip_scim_preflight, server.args(), run_command=H.FakeRunCommand(H.FakeZulip()))
    assert not out.failed, out
    assert out.result["version"] == "5.6"


# --------------------------------------------------------------------------- check_settings


@pytest.mark.reliability(area="fault", case="settings.py that could not be edited (does not compile, broken markers, SCIM_CONFIG outside the block)",
                         outcome="the preflight fails naming the file and the problem, before any change")
@pytest.mark.parametrize("content, message", [
    ("EXTERNAL_HOST = 'zulip.example.com'\nSCIM_CONFIG = {}\n", r"SCIM_CONFIG by hand, outside .*settings.py:2\).*zulip_scim_takeover: true"),
    ("EXTERNAL_HOST = 'zulip.example.com'\nEXTERNAL_HOST = = 1\n", "does not compile"),
    ("EXTERNAL_HOST = 'zulip.example.com'\n# BEGIN zulip_ops.zulip SCIM_CONFIG -- managed by Ansible\n", "BEGIN|END|marker"),
])
def test_check_settings_fails_before_anything_changes(tmp_path, content, message):
    settings = tmp_path / "settings.py"
    settings.write_text(content)
    assert zulip_scim_preflight.check_settings.__doc__
    with pytest.raises(zulip_utils.ZulipError, match=message):
        zulip_scim_preflight.check_settings(str(settings))


def test_check_settings_accepts_a_plain_file_and_names_a_missing_one(tmp_path):
    settings = tmp_path / "settings.py"
    settings.write_text("EXTERNAL_HOST = 'zulip.example.com'\n")
    zulip_scim_preflight.check_settings(str(settings))
    with pytest.raises(zulip_utils.ZulipError, match="cannot read .*missing.py"):
        zulip_scim_preflight.check_settings(str(tmp_path / "missing.py"))


# --------------------------------------------------------------------------- check_config (version-gated keys)

@pytest.mark.parametrize("version, item, msg", [
    ("8.4", {"subdomain": "acme", "create_guests_without_streams": True},
     "realm acme: create_guests_without_streams needs Zulip 9.0 or later, but this server runs 8.4; remove the key "
     "or upgrade Zulip first"),
    ("11.2", {"subdomain": "", "custom_profile_field_map": {}},
     'realm "" (root domain): custom_profile_field_map needs Zulip 12.0 or later, but this server runs 11.2'),
])
def test_check_config_fails_on_a_key_the_version_lacks_before_any_call(server, probe, version, item, msg):
    server.set_version(version)
    out = run(server.args(check_config=[dict(item, client_name="okta")]))
    assert out.failed and out.result["msg"].startswith(msg)
    assert out.run.calls == [] and probe.calls == []


@pytest.mark.parametrize("version, item", [
    ("9.0", {"subdomain": "acme", "create_guests_without_streams": False}),
    ("12.0-dev+git", {"subdomain": "acme", "custom_profile_field_map": {"a": "b"}}),
    ("5.6", {"subdomain": "acme", "create_guests_without_streams": True, "state": "absent"}),
    ("5.6", {"subdomain": "acme", "create_guests_without_streams": None, "name_formatted_included": True}),
])
def test_check_config_accepts_what_the_version_reads(server, probe, version, item):
    server.set_version(version)
    assert not run(server.args(check_config=[item]), zulip=fields_answer({"acme": ["b"], "": ["b"]})).failed


def test_check_config_message_is_the_one_zulip_scim_config_gives(server, probe):
    from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import check_optional_keys

    server.set_version("8.0")
    out = run(server.args(check_config=[{"subdomain": "acme", "create_guests_without_streams": True}]))
    with pytest.raises(zulip_utils.ZulipError) as exc:
        check_optional_keys("acme", ["create_guests_without_streams"], (8, 0))
    assert out.result["msg"] == str(exc.value)


# --------------------------------------------------------------------------- custom_profile_field_map

def fields_answer(fields: dict):
    """manage.py shell answering the collection's field query with ``fields``; anything else fails."""
    def answer(argv):
        if "shell" in argv and "CustomProfileField" in argv[-1]:
            return 0, "ZULIP_OPS_PROFILE_FIELDS " + json.dumps(fields) + "\n", ""
        return 1, "", "unexpected call %r" % (argv,)
    return answer


MAP_ITEM = {"subdomain": "acme", "custom_profile_field_map": {"department": "department", "title": "job_title"}}


@pytest.mark.reliability(area="bad_input", case="custom_profile_field_map naming a field the realm does not have",
                         outcome="the preflight fails listing the realm's fields, before any change (Zulip would "
                                 "answer 400 to every request that sets it)")
def test_a_map_naming_a_missing_field_fails_listing_the_realms_fields(server, probe):
    server.set_version("12.1")
    out = run(server.args(check_config=[MAP_ITEM], check_settings=True),
              zulip=fields_answer({"acme": ["Department", "Phone number"]}))
    assert out.failed
    assert out.result["msg"].startswith("realm acme: custom_profile_field_map names custom profile field(s) the "
                                        "realm does not have: job_title;")
    assert "The realm has: Department (department), Phone number (phone_number)" in out.result["msg"]
    assert [c["args"][0] for c in out.result["manage_calls"]] == ["shell"]


def test_a_map_whose_fields_exist_passes_with_one_call(server, probe):
    server.set_version("12.1")
    out = run(server.args(check_config=[MAP_ITEM], check_settings=True),
              zulip=fields_answer({"acme": ["Department", "Job title"]}))
    assert not out.failed, out
    assert len(out.result["manage_calls"]) == 1


def test_a_map_already_in_settings_costs_no_call(server, probe):
    """What a no-change run sees: the block holds the map already."""
    server.set_version("12.1")
    block = ("# BEGIN zulip_ops.zulip SCIM_CONFIG -- managed by Ansible, edits here are overwritten\n"
             "SCIM_CONFIG = {\n    'acme': {\n        'bearer_token': get_secret('scim_bearer_token_acme'),\n"
             "        'scim_client_name': 'okta',\n        'name_formatted_included': False,\n"
             "        'custom_profile_field_map': {'department': 'department', 'title': 'job_title'},\n    },\n}\n"
             "# END zulip_ops.zulip SCIM_CONFIG\n")
    server.settings.write_text(server.settings.read_text() + block)
    out = run(server.args(check_config=[MAP_ITEM], check_settings=True), zulip=fields_answer({}))
    assert not out.failed, out
    assert out.result["manage_calls"] == []


# --------------------------------------------------------------------------- the 5.x SCIM client rows, without manage.py

def test_scim_clients_listed_with_one_psql_query_and_no_manage_call(server, probe, with_psql):
    zulip = H.FakeZulip(realms=("acme", ""), clients=[("acme", "okta")])
    out = run(server.args(scim_clients=True), zulip)
    assert not out.failed, out
    assert out.result["scim_clients"] == {"realms": ["zulipinternal", "acme", ""], "clients": [["acme", "okta"]]}
    assert zulip.commands == [] and len(zulip.psql_calls) == 1


def test_scim_clients_null_without_failing_when_psql_cannot_connect(server, probe, with_psql):
    zulip = H.FakeZulip(psql_error='psql: error: FATAL:  Peer authentication failed for user "zulip"\n')
    out = run(server.args(scim_clients=True), zulip)
    assert not out.failed, out
    assert out.result["scim_clients"] is None and "Peer authentication" in out.result["scim_clients_error"]
    assert zulip.commands == []  # the fallback to manage.py is zulip_scim_client's, when it must change rows


@pytest.mark.parametrize("version, asked", [("9.0", True), ("5.6", False)])
def test_no_scim_client_query_on_6x_or_when_not_asked(server, probe, with_psql, version, asked):
    server.set_version(version)
    zulip = H.FakeZulip(version=version)
    out = run(server.args(scim_clients=asked), zulip)
    assert out.result["scim_clients"] is None and zulip.psql_calls == []
