"""Unit tests for plugins/module_utils/zulip.py."""

from __future__ import annotations

import os

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _programs as programs
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _zulip as zulip
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import (
    ManageRunner,
    ZulipError,
    has_scim_client_table,
    is_valid_subdomain,
    parse_version,
    read_version,
    realm_label,
    secret_name,
    unsupported_keys,
    version_label,
)


# --------------------------------------------------------------------------- subdomains

@pytest.mark.parametrize("subdomain", [
    "",            # root-domain realm
    "acme",
    "a-b",
    "a",
    "0",
    "zulip2",
    "9lives",
    "a" * 63,      # DNS label limit
    "a" + "-" * 61 + "b",
])
def test_valid_subdomains(subdomain):
    assert is_valid_subdomain(subdomain) is True


@pytest.mark.parametrize("subdomain", [
    "A",
    "Acme",
    "-a",
    "a-",
    "a_b",
    "a.b",
    "a b",
    " acme",
    "\nacme",
    "acme\nbeta",
    "a" * 64,
    "ä",
    "acme/x",
])
def test_invalid_subdomains(subdomain):
    assert is_valid_subdomain(subdomain) is False


@pytest.mark.parametrize("subdomain", ["acme\n", "\n"])
def test_trailing_newline_is_not_a_valid_subdomain(subdomain):
    assert is_valid_subdomain(subdomain) is False


def test_secret_name_rejects_a_trailing_newline():
    with pytest.raises(ZulipError):
        secret_name("acme\n")


@pytest.mark.parametrize("value", [None, 1, b"acme", ["acme"]])
def test_non_string_subdomains_are_invalid(value):
    assert is_valid_subdomain(value) is False


def test_secret_name_for_a_realm():
    assert secret_name("acme") == "scim_bearer_token_acme"
    assert secret_name("a-b") == "scim_bearer_token_a-b"


def test_secret_name_for_the_root_domain_cannot_collide_with_a_realm():
    assert secret_name("") == "scim_bearer_token__root"
    # "_root" is not a subdomain, so no realm can produce the same secret name.
    assert not is_valid_subdomain("_root")
    assert secret_name("root") != secret_name("")


@pytest.mark.parametrize("bad", ["A", "a_b", "a.b", "-a", "a" * 64])
def test_secret_name_rejects_invalid_subdomains(bad):
    with pytest.raises(ZulipError, match="not a valid Zulip subdomain"):
        secret_name(bad)


def test_realm_label():
    assert realm_label("acme") == "acme"
    assert realm_label("") == '"" (root domain)'


# --------------------------------------------------------------------------- versions

@pytest.mark.parametrize("text, expected", [
    ("5.6", (5, 6)),
    ("5.0", (5, 0)),
    ("12.0-dev+git", (12, 0)),
    ("11.2.1", (11, 2)),
    ("9.0-rc1", (9, 0)),
    ("10.10", (10, 10)),
])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", None, "dev", "v5.6", "5", " 5.6", "five.six", "5.x"])
def test_parse_version_rejects_garbage(text):
    with pytest.raises(ZulipError, match="cannot read a Zulip version"):
        parse_version(text)


def test_versions_compare_numerically_not_as_text():
    # "10.0" < "9.0" as strings; as versions 10.0 is newer.
    assert parse_version("10.0") > parse_version("9.0")
    assert parse_version("5.10") > parse_version("5.7")


def test_version_label():
    assert version_label((5, 6)) == "5.6"
    assert version_label((12, 0)) == "12.0"


def _deploy(tmp_path, text):
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    if text is not None:
        (deploy / "version.py").write_text(text, encoding="utf-8")
    return str(deploy)


def test_read_version_from_a_real_version_py(tmp_path):
    deploy = _deploy(tmp_path, (
        "import os\n"
        "\n"
        'ZULIP_VERSION = "5.6"\n'
        "# Bump the minor PROVISION_VERSION to indicate that folks should provision\n"
        'LATEST_MAJOR_VERSION = "5"\n'
        'LATEST_RELEASE_VERSION = "5.6"\n'
    ))
    assert read_version(deploy) == "5.6"


@pytest.mark.parametrize("line, expected", [
    ('ZULIP_VERSION = "12.0-dev+git"\n', "12.0-dev+git"),
    ("ZULIP_VERSION = '9.0'\n", "9.0"),
    ('ZULIP_VERSION="11.2"\n', "11.2"),
])
def test_read_version_quotes_and_spacing(tmp_path, line, expected):
    assert read_version(_deploy(tmp_path, "# header\n" + line)) == expected


def test_read_version_is_never_executed(tmp_path):
    # The file is read as text: code in it must not run.
    marker = tmp_path / "executed"
    deploy = _deploy(tmp_path, 'open(%r, "w").write("x")\nZULIP_VERSION = "9.0"\n' % str(marker))
    assert read_version(deploy) == "9.0"
    assert not marker.exists()


def test_read_version_missing_file_names_deploy_path_and_reason(tmp_path):
    deploy = _deploy(tmp_path, None)
    with pytest.raises(ZulipError) as info:
        read_version(deploy)
    msg = str(info.value)
    assert msg.startswith("no Zulip deployment at %s" % deploy)
    assert os.path.join(deploy, "version.py") in msg
    assert "No such file or directory" in msg
    # raised "from None": no chained OSError traceback for the operator
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_read_version_missing_deploy_directory(tmp_path):
    with pytest.raises(ZulipError, match="no Zulip deployment at"):
        read_version(str(tmp_path / "nope"))


def test_read_version_without_zulip_version_line(tmp_path):
    deploy = _deploy(tmp_path, 'LATEST_RELEASE_VERSION = "5.6"\n# ZULIP_VERSION = "5.6"\n')
    with pytest.raises(ZulipError, match=r"version\.py has no ZULIP_VERSION line"):
        read_version(deploy)


# --------------------------------------------------------------------------- capabilities

@pytest.mark.parametrize("version, expected", [
    ((5, 0), True),
    ((5, 6), True),
    ((5, 9), True),
    ((6, 0), False),
    ((9, 0), False),
])
def test_has_scim_client_table(version, expected):
    assert has_scim_client_table(version) is expected


ALL_OPTIONAL = ["custom_profile_field_map", "create_guests_without_streams", "bearer_token", "name_formatted_included"]


@pytest.mark.parametrize("version, expected", [
    ((5, 6), ["create_guests_without_streams", "custom_profile_field_map"]),
    ((8, 4), ["create_guests_without_streams", "custom_profile_field_map"]),
    ((9, 0), ["custom_profile_field_map"]),
    ((11, 5), ["custom_profile_field_map"]),
    ((12, 0), []),
    ((13, 1), []),
])
def test_unsupported_keys_per_version(version, expected):
    assert unsupported_keys(ALL_OPTIONAL, version) == expected


def test_unsupported_keys_ignores_keys_every_version_reads():
    assert unsupported_keys(["bearer_token", "scim_client_name", "name_formatted_included"], (5, 0)) == []
    assert unsupported_keys([], (5, 0)) == []
    # any iterable of keys, e.g. a dict
    assert unsupported_keys({"custom_profile_field_map": {}}, (11, 0)) == ["custom_profile_field_map"]


# --------------------------------------------------------------------------- ManageRunner

class FakeModule:
    """An AnsibleModule stand-in; the zulip user's programs (``_programs.run``) answer from its script."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def run_program(self, argv, timeout, cwd="/", environ_update=None):
        assert timeout > 0
        self.calls.append((list(argv), {"cwd": cwd, "environ_update": environ_update}))
        return programs.Finished(*self.answers.pop(0))


@pytest.fixture(autouse=True)
def programs_answer_from_the_fake_module(monkeypatch):
    """ManageRunner runs manage.py through _programs.run: route it to the FakeModule of the runner."""
    real_init = ManageRunner.__init__

    def init(self, module, *args, **kwargs):
        real_init(self, module, *args, **kwargs)
        if isinstance(module, FakeModule):
            monkeypatch.setattr(programs, "run", module.run_program)
    monkeypatch.setattr(ManageRunner, "__init__", init)


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(zulip.os, "geteuid", lambda: 0)


@pytest.fixture
def as_zulip(monkeypatch):
    monkeypatch.setattr(zulip.os, "geteuid", lambda: 1000)


def test_command_as_root_drops_to_the_zulip_user(as_root):
    runner = ManageRunner(FakeModule(), "/home/zulip/deployments/current")
    assert runner.command(["list_realms"]) == [
        "timeout", "--kill-after=10", "300",
        "runuser", "-u", "zulip", "--", "/home/zulip/deployments/current/manage.py", "list_realms",
    ]


def test_command_as_root_with_another_user(as_root):
    runner = ManageRunner(FakeModule(), "/srv/zulip", user="zulipadm")
    assert runner.command(["shell", "-c", "print(1)"]) == [
        "timeout", "--kill-after=10", "300", "runuser", "-u", "zulipadm", "--", "/srv/zulip/manage.py", "shell", "-c", "print(1)",
    ]


def test_command_as_non_root_runs_manage_py_directly(as_zulip):
    runner = ManageRunner(FakeModule(), "/home/zulip/deployments/current")
    assert runner.command(["add_scim_client", "okta", "-r", ""]) == [
        "timeout", "--kill-after=10", "300", "/home/zulip/deployments/current/manage.py", "add_scim_client", "okta", "-r", "",
    ]


def test_command_does_not_alias_the_callers_list(as_zulip):
    runner = ManageRunner(FakeModule(), "/d")
    args = ["list_realms"]
    argv = runner.command(args)
    argv.append("extra")
    assert args == ["list_realms"]


def test_run_passes_argv_list_cwd_and_locale_and_records_the_call(as_root):
    module = FakeModule((0, "out", ""))
    runner = ManageRunner(module, "/d")
    assert runner.run(["list_realms"]) == (0, "out", "")
    argv, kwargs = module.calls[0]
    assert argv == ["timeout", "--kill-after=10", "300", "runuser", "-u", "zulip", "--", "/d/manage.py", "list_realms"]
    assert kwargs == {"cwd": "/", "environ_update": {"LC_ALL": "C.UTF-8"}}
    assert len(runner.calls) == 1
    call = runner.calls[0]
    assert call["args"] == ["list_realms"] and call["rc"] == 0
    assert isinstance(call["seconds"], float) and call["seconds"] >= 0


def test_run_records_the_time_a_call_took(as_zulip, monkeypatch):
    ticks = iter([100.0, 106.537])
    monkeypatch.setattr(zulip.time, "monotonic", lambda: next(ticks))
    runner = ManageRunner(FakeModule((0, "", "")), "/d")
    runner.run(["add_scim_client", "okta", "-r", "acme"])
    assert runner.calls == [{"args": ["add_scim_client", "okta", "-r", "acme"], "rc": 0, "seconds": 6.54}]


def test_run_records_a_copy_of_args(as_zulip):
    runner = ManageRunner(FakeModule((0, "", "")), "/d")
    args = ["list_realms"]
    runner.run(args)
    args.append("mutated")
    assert runner.calls[0]["args"] == ["list_realms"]


def test_run_failure_raises_with_stderr(as_zulip):
    module = FakeModule((1, "", "There is no realm with id 'nope'. Aborting.\n"))
    runner = ManageRunner(module, "/d")
    with pytest.raises(ZulipError) as info:
        runner.run(["add_scim_client", "okta", "-r", "nope"])
    assert str(info.value) == "manage.py add_scim_client failed (rc=1): There is no realm with id 'nope'. Aborting."
    # the failed call is still recorded
    assert runner.calls[0]["rc"] == 1


def test_run_failure_prefers_stderr_over_stdout(as_zulip):
    module = FakeModule((1, "2026-11-28 WARN noise on stdout\n", "There is no realm with id 'x'. Aborting.\n"))
    with pytest.raises(ZulipError) as info:
        ManageRunner(module, "/d").run(["add_scim_client", "okta", "-r", "x"])
    assert str(info.value).endswith("There is no realm with id 'x'. Aborting.")
    assert "noise" not in str(info.value)


def test_run_failure_falls_back_to_stdout_when_stderr_is_empty(as_root):
    refusal = ("manage.py should not be run as root. Use `su zulip` to switch to the 'zulip' user "
               "before rerunning this, or use \n  su zulip -c '/home/zulip/deployments/current/manage.py ...'\n")
    runner = ManageRunner(FakeModule((1, refusal, "")), "/d")
    with pytest.raises(ZulipError, match=r"manage\.py list_realms failed \(rc=1\): manage\.py should not be run as root"):
        runner.run(["list_realms"])


def test_run_failure_keeps_only_the_tail_of_a_long_traceback(as_zulip):
    traceback = "Traceback (most recent call last):\n" + "x" * 5000 + "\nIntegrityError: duplicate key value violates unique constraint\n"
    runner = ManageRunner(FakeModule((1, "", traceback)), "/d")
    with pytest.raises(ZulipError) as info:
        runner.run(["add_scim_client", "okta", "-r", "acme"])
    msg = str(info.value)
    assert msg.endswith("IntegrityError: duplicate key value violates unique constraint")
    assert "Traceback" not in msg
    assert len(msg) <= len("manage.py add_scim_client failed (rc=1): ") + 2000


def test_run_with_check_false_returns_failures(as_zulip):
    runner = ManageRunner(FakeModule((1, "False\n", "boom")), "/d")
    assert runner.run(["shell", "-c", "x"], check=False) == (1, "False\n", "boom")
    assert runner.calls[0]["rc"] == 1


def test_run_with_no_args_failure_message(as_zulip):
    runner = ManageRunner(FakeModule((2, "", "usage")), "/d")
    with pytest.raises(ZulipError, match=r"^manage\.py  failed \(rc=2\): usage$"):
        runner.run([])


def test_calls_accumulate_in_order(as_zulip):
    runner = ManageRunner(FakeModule((0, "", ""), (0, "", ""), (1, "", "e")), "/d")
    runner.run(["a"])
    runner.run(["b"])
    runner.run(["c"], check=False)
    assert [(c["args"][0], c["rc"]) for c in runner.calls] == [("a", 0), ("b", 0), ("c", 1)]


def test_constants_match_the_behaviour_page():
    assert zulip.DEFAULT_DEPLOY_PATH == "/home/zulip/deployments/current"
    assert zulip.SETTINGS_PATH == "/etc/zulip/settings.py"
    assert zulip.SECRETS_PATH == "/etc/zulip/zulip-secrets.conf"
    assert zulip.SCIM_CLIENT_TABLE_UNTIL == (6, 0)
    assert zulip.CONSTANT_TIME_TOKEN_SINCE == (5, 7)
    assert zulip.SCIM_CONFIG_DEFAULT_SINCE == (11, 0)
    # RESTART_AS_ROOT_SINCE is gone: nothing used it (as_user always drops to zulip itself).
    assert not hasattr(zulip, "RESTART_AS_ROOT_SINCE")


def test_no_time_limit_with_timeout_zero(as_zulip):
    assert ManageRunner(FakeModule(), "/d", timeout=0).command(["list_realms"]) == ["/d/manage.py", "list_realms"]


@pytest.mark.reliability(area="fault", case="manage.py hangs (a database that does not answer)",
                         outcome="stopped by coreutils timeout after manage_timeout; a clear error that names the "
                                 "command and the limit, before anything is changed")
@pytest.mark.parametrize("rc", [124, 137])
def test_a_call_that_runs_out_of_time_is_a_clear_error(as_zulip, rc):
    runner = ManageRunner(FakeModule((rc, "", "")), "/d", timeout=7)
    with pytest.raises(ZulipError, match=r"manage.py list_realms did not finish within 7 s \(manage_timeout\)"):
        runner.run(["list_realms"], check=False)


def test_a_real_hanging_command_is_stopped_by_the_limit(as_zulip, tmp_path):
    """The prefix really stops a hanging manage.py: run it with coreutils timeout for real."""
    import subprocess
    import time as _time

    manage = tmp_path / "manage.py"
    manage.write_text("#!/bin/sh\nsleep 60\n")
    manage.chmod(0o755)
    argv = ManageRunner(FakeModule(), str(tmp_path), timeout=1).command(["list_realms"])
    started = _time.monotonic()
    rc = subprocess.run(argv, check=False).returncode
    assert rc == 124 and _time.monotonic() - started < 10
