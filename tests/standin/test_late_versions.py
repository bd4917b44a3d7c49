"""Flavours beyond the three main ones: any "X.Y" works, rules follow the numbers (marker standin)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from targets import EXTERNAL_HOST, LocalTarget, free_port, realm_host

pytestmark = pytest.mark.standin

SCIM = ('\nSCIM_CONFIG = {"acme": {"bearer_token": "tok", "scim_client_name": "okta",'
        ' "name_formatted_included": True}}\n')


@pytest.fixture(scope="module", params=["11.5", "12.0-dev+git", "12.1"])
def late(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    target = LocalTarget(request.param, tmp_path_factory.mktemp("late"), free_port(), 0.0, 0.0)
    target.install()
    yield target
    target.stop()


def test_version_reported(late: LocalTarget) -> None:
    assert late.get("/api/v1/server_settings", EXTERNAL_HOST)["json"]["zulip_version"] == late.flavour
    assert Path(late.deploy, "zerver/models/__init__.py").exists()


def test_checkconfig_is_gone_and_check_checks_config(late: LocalTarget) -> None:
    gone = late.manage("checkconfig")
    assert gone.rc == 1
    assert gone.err == "Unknown command: 'checkconfig'. Did you mean check?\nType 'manage.py help' for usage.\n"
    assert late.manage("check").rc == 0
    late.write(late.settings_path, late.base_settings.replace("ZULIP_ADMINISTRATOR =", "# ZULIP_ADMINISTRATOR ="))
    try:
        failing = late.manage("check")
        assert failing.rc == 1
        assert "SystemCheckError" in failing.err and "ZULIP_ADMINISTRATOR" in failing.err
    finally:
        late.write(late.settings_path, late.base_settings)


def test_groups_and_default_scim_config(late: LocalTarget) -> None:
    late.apply_settings(None)
    assert late.get("/scim/v2/Users", realm_host("acme"), token="tok")["status"] == 401  # SCIM_CONFIG = {} default
    late.apply_settings(SCIM)
    created = late.http({"method": "POST", "path": "/scim/v2/Groups", "host": realm_host("acme"),
                         "headers": {"Authorization": "Bearer tok"}, "json": {"displayName": "ops"}})[0]
    assert created["status"] == 201
    listed = late.get("/scim/v2/Groups", realm_host("acme"), token="tok")
    assert listed["status"] == 200 and listed["json"]["totalResults"] == 1
    assert "role" in late.get("/scim/v2/Users?count=1", realm_host("acme"), token="tok")["json"]["Resources"][0]


def test_add_scim_client_unknown(late: LocalTarget) -> None:
    result = late.manage("add_scim_client", "okta", "-r", "acme")
    assert result.rc == 1 and result.err.startswith("Unknown command: 'add_scim_client'")


def test_restart_server_repoints_current_to_its_deployment(late: LocalTarget) -> None:
    """An "upgrade": a copied deployment with another version.py, started by its own restart-server."""
    deployments = Path(late.path("/home/zulip/deployments"))
    old = (deployments / "current").resolve()
    new = deployments / "2030-01-01-00-00-00"
    shutil.copytree(old, new, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    (new / "version.py").write_text('ZULIP_VERSION = "13.1"\n')
    try:
        result = late.run([str(new / "scripts/restart-server")], user="zulip")
        assert result.rc == 0, result
        assert (deployments / "current").resolve() == new and (deployments / "last").resolve() == old
        assert late.get("/api/v1/server_settings", EXTERNAL_HOST)["json"]["zulip_version"] == "13.1"
    finally:
        back = late.run([str(old / "scripts/restart-server")], user="zulip")
        assert back.rc == 0, back
        shutil.rmtree(new)
    assert late.get("/api/v1/server_settings", EXTERNAL_HOST)["json"]["zulip_version"] == late.flavour


MAPPED = ('\nSCIM_CONFIG = {"acme": {"bearer_token": "tok", "scim_client_name": "okta",'
          ' "name_formatted_included": False, "custom_profile_field_map": {"department": "department",'
          ' "title": "job_title"}}}\n')


@pytest.mark.parametrize("flavour, enforced", [("12.1", True), ("11.5", False)])
def test_custom_profile_field_map_needs_the_fields(flavour: str, enforced: bool,
                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    """12.0+: a request that sets a mapped attribute of a field the realm lacks gets 400; 11.x ignores the map."""
    target = LocalTarget(flavour, tmp_path_factory.mktemp("fields"), free_port(), 0.0, 0.0,
                         extra_args=("--profile-fields", '{"acme": ["Department"]}'))
    target.install()
    try:
        target.apply_settings(MAPPED)
        listed = target.manage("shell", "-c", "from zerver.models import CustomProfileField, get_realm; "
                               "print([f.name for f in CustomProfileField.objects.filter(realm=get_realm('acme'))])")
        assert listed.rc == 0 and listed.out.strip() == "['Department']"

        def create(email: str, **extra: str) -> dict:
            body = {"userName": email, "name": {"givenName": "A", "familyName": "B"}, "active": True, **extra}
            return target.http({"method": "POST", "path": "/scim/v2/Users", "host": realm_host("acme"),
                                "headers": {"Authorization": "Bearer tok"}, "json": body})[0]

        assert create("a@example.test", department="Ops")["status"] == 201  # the field exists
        missing = create("b@example.test", title="Boss")
        if enforced:
            assert missing["status"] == 400
            assert missing["json"]["detail"] == "Custom profile field with name job_title not found."
        else:
            assert missing["status"] == 201
    finally:
        target.stop()
