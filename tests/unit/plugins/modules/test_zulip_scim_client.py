"""Unit tests for plugins/modules/zulip_scim_client.py, run through main().

manage.py is emulated by FakeZulip (see _module_runner.py): ``shell -c`` really
executes the program the module sends against a fake ``zerver.models``, so the
listing and delete programs are proven to work, and add_scim_client answers
like Zulip 5.x (silent rc 0; IntegrityError on a duplicate; "There is no realm
with id" for an unknown realm) or 6.0+ ("Unknown command").
"""

from __future__ import annotations


import pytest
from ansible.module_utils import basic

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _scim_clients
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _zulip as zulip_utils
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_client
from ansible_collections.zulip_ops.zulip.plugins.modules.zulip_scim_client import LIST_CODE, OUTPUT_MARKER


import _module_runner as H  # noqa: E402 - found through conftest.py

pytestmark = pytest.mark.usefixtures("as_root")

LISTING = ["shell", "-c", LIST_CODE]


@pytest.fixture(autouse=True)
def psql_missing(monkeypatch):
    """Most tests here prove the manage.py path: a host without psql. The psql tests put it back."""
    original = basic.AnsibleModule.get_bin_path

    def get_bin_path(self, arg, *args, **kwargs):
        return None if arg == "psql" else original(self, arg, *args, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)


@pytest.fixture
def deploy(tmp_path):
    path = tmp_path / "current"
    path.mkdir()
    (path / "version.py").write_text('ZULIP_VERSION = "5.6"\n', encoding="utf-8")
    return path


def run(args, zulip, deploy, **kwargs):
    module_args = {"deploy_path": str(deploy)}
    module_args.update(args)
    return H.run_module(zulip_scim_client.main, module_args, run_command=H.FakeRunCommand(zulip), **kwargs)


def clients(*items):
    result = []
    for item in items:
        realm, name = item[0], item[1]
        entry = {"subdomain": realm, "client_name": name}
        if len(item) > 2:
            entry["state"] = item[2]
        result.append(entry)
    return result


# --------------------------------------------------------------------------- 6.0+

@pytest.mark.parametrize("version", ["6.0", "9.3", "11.2", "12.0-dev+git"])
def test_no_client_table_means_no_manage_call(deploy, version):
    (deploy / "version.py").write_text('ZULIP_VERSION = "%s"\n' % version)
    zulip = H.FakeZulip(version="9.3")
    out = run({"realms": clients(("acme", "okta"), ("beta", "okta", "absent"))}, zulip, deploy)
    assert not out.failed, out
    assert out.run.calls == []
    r = out.result
    assert r["changed"] is False
    assert r["client_table"] is False
    assert r["created"] == [] and r["deleted"] == [] and r["manage_calls"] == []
    assert r["msg"] == ("Zulip %s has no SCIM client table (removed in 6.0): the SCIM_CONFIG entry is the whole "
                        "configuration, nothing to do" % version)


def test_version_option_overrides_version_py(deploy):
    (deploy / "version.py").unlink()  # not read at all
    out = run({"realms": clients(("acme", "okta")), "version": "6.0"}, H.FakeZulip(version="6.0"), deploy)
    assert not out.failed, out
    assert out.result["client_table"] is False
    assert out.run.calls == []


def test_version_option_5x_wins_over_a_6x_version_py(deploy):
    (deploy / "version.py").write_text('ZULIP_VERSION = "9.0"\n')
    zulip = H.FakeZulip(version="5.6", realms=("acme",))
    out = run({"realms": clients(("acme", "okta")), "version": "5.6"}, zulip, deploy)
    assert out.result["client_table"] is True
    assert zulip.commands[0] == LISTING


def test_missing_version_py_fails_without_calls(deploy):
    (deploy / "version.py").unlink()
    out = run({"realms": clients(("acme", "okta"))}, H.FakeZulip(), deploy)
    assert out.failed
    assert out.result["msg"].startswith("no Zulip deployment at %s" % deploy)
    assert out.run.calls == []


# --------------------------------------------------------------------------- 5.x

def test_one_listing_then_one_add_per_missing_client(deploy):
    zulip = H.FakeZulip(realms=("acme", "beta", ""), clients=[("beta", "okta")])
    out = run({"realms": clients(("acme", "okta"), ("beta", "okta"), ("", "entra-id"))}, zulip, deploy)
    assert not out.failed, out
    assert zulip.commands == [
        LISTING,
        ["add_scim_client", "okta", "-r", "acme"],
        ["add_scim_client", "entra-id", "-r", ""],
    ]
    r = out.result
    assert r["changed"] is True
    assert r["client_table"] is True
    assert r["created"] == [{"subdomain": "acme", "client_name": "okta"}, {"subdomain": "", "client_name": "entra-id"}]
    assert r["deleted"] == []
    assert zulip.client_pairs == {("beta", "okta"), ("acme", "okta"), ("", "entra-id")}
    assert [c["args"] for c in r["manage_calls"]] == zulip.commands
    assert all(c["rc"] == 0 for c in r["manage_calls"])
    manage = str(deploy / "manage.py")
    assert out.run.argvs[1] == ["runuser", "-u", "zulip", "--", manage, "add_scim_client", "okta", "-r", "acme"]
    for call in out.run.calls:
        assert call["kwargs"] == {"cwd": "/", "environ_update": {"LC_ALL": "C.UTF-8"}}


def test_everything_present_is_one_listing_call_and_no_change(deploy):
    zulip = H.FakeZulip(realms=("acme",), clients=[("acme", "okta")])
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy)
    assert not out.failed, out
    assert zulip.commands == [LISTING]
    assert out.result["changed"] is False
    assert out.result["created"] == []


def test_second_run_is_idempotent(deploy):
    zulip = H.FakeZulip(realms=("acme",))
    args = {"realms": clients(("acme", "okta"))}
    assert run(args, zulip, deploy).result["changed"] is True
    out = run(args, zulip, deploy)
    assert not out.failed, out  # add_scim_client would fail with IntegrityError if it ran again
    assert out.result["changed"] is False
    assert zulip.commands.count(["add_scim_client", "okta", "-r", "acme"]) == 1


def test_same_name_in_another_realm_is_a_different_client(deploy):
    zulip = H.FakeZulip(realms=("acme", "beta"), clients=[("acme", "okta")])
    out = run({"realms": clients(("acme", "okta"), ("beta", "okta"))}, zulip, deploy)
    assert out.result["created"] == [{"subdomain": "beta", "client_name": "okta"}]


def test_unknown_realm_fails_before_any_add(deploy):
    zulip = H.FakeZulip(realms=("acme", ""))
    out = run({"realms": clients(("acme", "okta"), ("nope", "okta"), ("gone", "x"))}, zulip, deploy)
    assert out.failed
    assert zulip.commands == [LISTING]
    assert zulip.client_pairs == set()
    assert out.result["msg"] == ('realm(s) gone, nope do not exist on this Zulip server; it has: '
                                 'zulipinternal, acme, "" (root domain)')
    assert out.result["changed"] is False and out.result["created"] == []


def test_missing_root_realm_fails_before_any_add(deploy):
    zulip = H.FakeZulip(realms=("acme",))  # no root-domain realm on this server
    out = run({"realms": clients(("acme", "okta"), ("", "okta"))}, zulip, deploy)
    assert out.failed
    assert out.result["msg"] == ('realm(s) "" (root domain) do not exist on this Zulip server; it has: '
                                 'zulipinternal, acme')
    assert zulip.commands == [LISTING]


def test_absent_client_of_an_unknown_realm_is_fine(deploy):
    zulip = H.FakeZulip(realms=("acme",))
    out = run({"realms": clients(("nope", "okta", "absent"))}, zulip, deploy)
    assert not out.failed, out
    assert out.result["changed"] is False
    assert zulip.commands == [LISTING]


def test_absent_clients_are_deleted_in_one_call(deploy):
    zulip = H.FakeZulip(realms=("acme", "beta", ""),
                        clients=[("acme", "okta"), ("beta", "okta"), ("", "o'kta"), ("acme", "keep")])
    out = run({"realms": clients(("acme", "okta", "absent"), ("", "o'kta", "absent"), ("beta", "gone", "absent"),
                                 ("acme", "keep"))}, zulip, deploy)
    assert not out.failed, out
    assert len(zulip.commands) == 2
    assert zulip.commands[0] == LISTING
    assert zulip.commands[1][:2] == ["shell", "-c"]
    assert out.result["deleted"] == [{"subdomain": "acme", "client_name": "okta"}, {"subdomain": "", "client_name": "o'kta"}]
    assert out.result["created"] == []
    assert out.result["changed"] is True
    # the program really deleted exactly those rows
    assert zulip.client_pairs == {("beta", "okta"), ("acme", "keep")}


def test_absent_client_that_does_not_exist_makes_no_call(deploy):
    zulip = H.FakeZulip(realms=("acme",), clients=[("acme", "other")])
    out = run({"realms": clients(("acme", "okta", "absent"))}, zulip, deploy)
    assert out.result["changed"] is False
    assert zulip.commands == [LISTING]


def test_adds_and_deletes_together(deploy):
    zulip = H.FakeZulip(realms=("acme",), clients=[("acme", "old")])
    out = run({"realms": clients(("acme", "new"), ("acme", "old", "absent"))}, zulip, deploy)
    assert not out.failed, out
    assert [c[0] for c in zulip.commands] == ["shell", "add_scim_client", "shell"]
    assert zulip.client_pairs == {("acme", "new")}


def test_check_mode_only_lists(deploy):
    zulip = H.FakeZulip(realms=("acme",), clients=[("acme", "old")])
    out = run({"realms": clients(("acme", "new"), ("acme", "old", "absent"))}, zulip, deploy, check_mode=True)
    assert not out.failed, out
    assert zulip.commands == [LISTING]
    assert out.result["changed"] is True
    assert out.result["created"] == [{"subdomain": "acme", "client_name": "new"}]
    assert out.result["deleted"] == [{"subdomain": "acme", "client_name": "old"}]
    assert zulip.client_pairs == {("acme", "old")}


def test_check_mode_still_fails_on_unknown_realm(deploy):
    zulip = H.FakeZulip(realms=("acme",))
    out = run({"realms": clients(("nope", "x"))}, zulip, deploy, check_mode=True)
    assert out.failed
    assert zulip.commands == [LISTING]


def test_diff_before_and_after(deploy):
    zulip = H.FakeZulip(realms=("acme", "beta", ""), clients=[("beta", "okta"), ("acme", "old")])
    out = run({"realms": clients(("acme", "okta"), ("", "entra"), ("acme", "old", "absent"))}, zulip, deploy,
              diff=True, check_mode=True)
    assert not out.failed, out
    diff = out.result["diff"]
    assert diff["before"] == "acme\told\nbeta\tokta\n"
    assert diff["after"] == '"" (root domain)\tentra\nacme\tokta\nbeta\tokta\n'
    assert diff["before_header"] == diff["after_header"] == "SCIM clients"


def test_no_diff_without_diff_mode(deploy):
    out = run({"realms": clients(("acme", "okta"))}, H.FakeZulip(realms=("acme",)), deploy)
    assert "diff" not in out.result


def test_diff_unchanged_is_equal(deploy):
    zulip = H.FakeZulip(realms=("acme",), clients=[("acme", "okta")])
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy, diff=True)
    assert out.result["diff"]["before"] == out.result["diff"]["after"] == "acme\tokta\n"


def test_custom_user(deploy):
    zulip = H.FakeZulip(realms=("acme",))
    out = run({"realms": clients(("acme", "okta")), "user": "zulipadm"}, zulip, deploy)
    assert all(argv[:4] == ["runuser", "-u", "zulipadm", "--"] for argv in out.run.argvs)


def test_non_root_runs_manage_py_directly(deploy, monkeypatch):
    monkeypatch.setattr(zulip_utils.os, "geteuid", lambda: 1000)
    zulip = H.FakeZulip(realms=("acme",))
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy)
    assert out.run.argvs[0] == [str(deploy / "manage.py")] + LISTING


# --------------------------------------------------------------------------- validation (before any call)

@pytest.mark.parametrize("items, msg", [
    ((("acme", "okta"), ("acme", "okta")),
     "realms[1]: client 'okta' of realm acme is listed twice (also realms[0]); list each once"),
    ((("", "okta"), ("", "okta", "absent")),
     "realms[1]: client 'okta' of realm \"\" (root domain) is listed twice (also realms[0]); list each once"),
    ((("acme", ""),), "realms[0].client_name: '' is not a valid client name: a client name cannot be empty"),
    ((("acme", "   "),), "realms[0].client_name: '   ' is not a valid client name: a client name cannot be empty"),
    ((("Acme", "okta"),), "realms[0].subdomain: 'Acme' is not a valid Zulip subdomain: 'A' is not allowed in a "
                          "subdomain (only lower-case ASCII letters, digits and hyphens; \"\" is the root domain)"),
    ((("a.b", "okta"),), "realms[0].subdomain: 'a.b' is not a valid Zulip subdomain: '.' is not allowed in a "
                         "subdomain (only lower-case ASCII letters, digits and hyphens; \"\" is the root domain)"),
])
@pytest.mark.parametrize("version", ["5.6", "9.0"])
def test_invalid_clients_rejected_before_any_call(deploy, items, msg, version):
    (deploy / "version.py").write_text('ZULIP_VERSION = "%s"\n' % version)
    out = run({"realms": clients(*items)}, H.FakeZulip(realms=("acme",)), deploy)
    assert out.failed
    assert out.result["msg"] == msg
    assert out.run.calls == []


def test_bad_state_is_rejected_by_the_argument_spec(deploy):
    out = run({"realms": [{"subdomain": "acme", "client_name": "okta", "state": "gone"}]}, H.FakeZulip(), deploy)
    assert out.failed
    assert "state" in out.result["msg"]
    assert out.run.calls == []


def test_realms_are_required(deploy):
    out = run({}, H.FakeZulip(), deploy)
    assert out.failed
    assert "realms" in out.result["msg"]


def test_the_scim_config_keys_of_a_realm_item_are_accepted_and_do_not_matter(deploy):
    # The same realm list serves zulip_scim_config: its SCIM_CONFIG keys are no concern of the client row.
    zulip = H.FakeZulip(realms=("acme",))
    item = {"subdomain": "acme", "client_name": "okta", "name_formatted_included": True,
            "create_guests_without_streams": True, "custom_profile_field_map": {"a": "b"}}
    out = run({"realms": [item]}, zulip, deploy)
    assert not out.failed, out
    assert out.result["created"] == [{"subdomain": "acme", "client_name": "okta"}]


def test_clients_of_takes_subdomain_client_name_and_state_only():
    realms = [{"subdomain": "acme", "client_name": "okta", "state": "present", "name_formatted_included": False,
               "create_guests_without_streams": None, "custom_profile_field_map": {"a": "b"}},
              {"subdomain": "", "client_name": "entra-id", "state": "present"},
              {"subdomain": "beta", "client_name": "okta", "state": "absent"}]
    assert zulip_scim_client.clients_of(realms) == [
        {"realm": "acme", "name": "okta", "state": "present"},
        {"realm": "", "name": "entra-id", "state": "present"},
        {"realm": "beta", "name": "okta", "state": "absent"},
    ]
    assert zulip_scim_client.clients_of([]) == []


def test_client_name_defaults_to_okta(deploy):
    out = run({"realms": [{"subdomain": "acme"}]}, H.FakeZulip(realms=("acme",)), deploy)
    assert out.result["created"] == [{"subdomain": "acme", "client_name": "okta"}]


# --------------------------------------------------------------------------- listing output

def test_listing_with_noise_around_the_marker(deploy):
    zulip = H.FakeZulip(realms=("acme",), clients=[("acme", "okta")],
                        shell_noise_before="2026-11-28 15:05:00 WARN [zulip.management] noisy\nSome banner\n",
                        shell_noise_after="\nWarning: trailing output\n")
    out = run({"realms": clients(("acme", "okta"), ("acme", "other"))}, zulip, deploy)
    assert not out.failed, out
    assert out.result["created"] == [{"subdomain": "acme", "client_name": "other"}]


def test_missing_marker_is_a_clear_error(deploy):
    zulip = H.FakeZulip(overrides={"shell": (0, "Python 3.11.2 (main)\n>>> \n", "")})
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy)
    assert out.failed
    assert out.result["msg"] == "manage.py shell did not print the SCIM client listing: Python 3.11.2 (main)\n>>>"
    assert out.result["changed"] is False


def test_listing_on_a_6x_server_mislabelled_as_5x_fails_with_the_import_error(deploy):
    zulip = H.FakeZulip(version="6.0", realms=("acme",))
    out = run({"realms": clients(("acme", "okta")), "version": "5.6"}, zulip, deploy)
    assert out.failed
    assert out.result["msg"].startswith("manage.py shell failed (rc=1): ")
    assert "ImportError: cannot import name 'SCIMClient'" in out.result["msg"]
    assert len(zulip.commands) == 1


def test_manage_py_refusing_root_is_reported(deploy):
    zulip = H.FakeZulip(overrides={"shell": (1, H.MANAGE_ROOT_REFUSAL, "")})
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy)
    assert out.failed
    assert "manage.py should not be run as root" in out.result["msg"]
    assert out.result["manage_calls"] == [{"args": LISTING, "rc": 1, "seconds": out.result["manage_calls"][0]["seconds"]}]


def test_add_failure_stops_and_reports_stderr(deploy):
    zulip = H.FakeZulip(realms=("acme",),
                        overrides={"add_scim_client": (1, "", "There is no realm with id 'acme'. Aborting.\n")})
    out = run({"realms": clients(("acme", "okta"), ("acme", "two"))}, zulip, deploy)
    assert out.failed
    assert out.result["msg"] == "manage.py add_scim_client failed (rc=1): There is no realm with id 'acme'. Aborting."
    assert len(zulip.commands) == 2  # stopped after the first failing add


def test_duplicate_on_the_server_surfaces_the_integrity_error(deploy):
    # a client created between the listing and the add (another run): the server says IntegrityError
    zulip = H.FakeZulip(realms=("acme",))
    original = zulip._cmd_shell

    def listing_then_race(args):
        answer = original(args)
        zulip.clients.append(H._Client(zulip.realms[1], "okta"))
        return answer
    zulip._cmd_shell = listing_then_race
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy)
    assert out.failed
    assert "IntegrityError: duplicate key value violates unique constraint" in out.result["msg"]


def test_failed_add_is_not_reported_as_created(deploy):
    zulip = H.FakeZulip(realms=("acme",),
                        overrides={"add_scim_client": (1, "", "boom\n")})
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy)
    assert out.failed
    assert out.result["created"] == []
    assert out.result["changed"] is False


# --------------------------------------------------------------------------- helpers

def test_list_code_is_valid_python_that_prints_the_marker():
    compile(LIST_CODE, "<list>", "exec")
    assert OUTPUT_MARKER in LIST_CODE


def test_delete_code_quotes_names_safely():
    code = zulip_scim_client.delete_code([("acme", "a'b\"c"), ("", "x\ny")])
    compile(code, "<delete>", "exec")
    assert code.count(".delete()") == 2
    assert code.startswith("from zerver.models import SCIMClient\n")


def test_parse_listing_takes_the_first_marker_line():
    out = "noise\n%s{\"realms\": [\"a\", \"\"], \"clients\": [[\"a\", \"x\"]]}\n%s{\"realms\": [], \"clients\": []}\n" % (
        OUTPUT_MARKER, OUTPUT_MARKER)
    assert zulip_scim_client.parse_listing(out) == (["a", ""], {("a", "x")})


def test_runs_as_a_script(deploy):
    zulip = H.FakeZulip(realms=("acme",))
    out = H.run_script(zulip_scim_client, {"deploy_path": str(deploy), "realms": clients(("acme", "okta"))},
                       run_command=H.FakeRunCommand(zulip), check_mode=True)
    assert not out.failed, out
    assert out.result["created"] == [{"subdomain": "acme", "client_name": "okta"}]


# --------------------------------------------------------------------------- psql instead of manage.py

def test_no_change_listing_is_one_psql_query_and_no_manage_call(deploy, with_psql):
    zulip = H.FakeZulip(realms=("acme", ""), clients=[("acme", "okta"), ("", "entra-id")])
    out = run({"realms": clients(("acme", "okta"), ("", "entra-id"))}, zulip, deploy)
    assert not out.failed, out
    assert zulip.commands == [] and out.result["manage_calls"] == []
    assert len(zulip.psql_calls) == 1
    assert out.result["changed"] is False and out.warnings == []
    assert out.result["listing"]["tool"] == "psql" and out.result["listing"]["rc"] == 0
    argv = out.run.argvs[0]
    # As zulip (peer authentication), in a read-only transaction.
    assert argv[:5] == ["runuser", "-u", "zulip", "--", "/usr/bin/psql"]
    assert "-0" in argv and argv[argv.index("-d") + 1] == "zulip"
    env = out.run.calls[0]["kwargs"]["environ_update"]
    assert env["PGOPTIONS"] == "-c default_transaction_read_only=on"


def test_psql_listing_then_add_scim_client_for_the_missing_one(deploy, with_psql):
    zulip = H.FakeZulip(realms=("acme", "beta"), clients=[("beta", "okta")])
    out = run({"realms": clients(("acme", "okta"), ("beta", "okta"))}, zulip, deploy)
    assert not out.failed, out
    assert zulip.commands == [["add_scim_client", "okta", "-r", "acme"]]
    assert out.result["created"] == [{"subdomain": "acme", "client_name": "okta"}]


def test_psql_that_cannot_connect_falls_back_to_manage_py_with_a_warning(deploy, with_psql):
    error = ('psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
             'No such file or directory\n')
    zulip = H.FakeZulip(realms=("acme",), clients=[("acme", "okta")], psql_error=error)
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy)
    assert not out.failed, out
    assert zulip.commands == [LISTING]
    assert out.result["listing"]["error"].startswith("psql: error: connection")
    assert len(out.warnings) == 1 and "using manage.py shell instead" in out.warnings[0]


def test_missing_psql_falls_back_with_a_warning(deploy):
    zulip = H.FakeZulip(realms=("acme",))
    out = run({"realms": clients(("acme", "okta"))}, zulip, deploy)
    assert zulip.commands[0] == LISTING and zulip.psql_calls == []
    assert "psql is not installed" in out.warnings[0]


@pytest.mark.parametrize("text, expected", [
    ("", ([], set())),
    ("realm\0zulipinternal\0\0realm\0\0\0client\0\0a b\0", (["zulipinternal", ""], {("", "a b")})),
])
def test_parse_psql(text, expected):
    assert _scim_clients.parse_psql(text) == expected


@pytest.mark.parametrize("text", ["realm\0x\0", "table\0x\0\0"])
def test_parse_psql_refuses_what_it_does_not_know(text):
    with pytest.raises(zulip_utils.ZulipError):
        _scim_clients.parse_psql(text)
