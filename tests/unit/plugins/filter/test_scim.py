"""Unit tests for plugins/filter/scim.py."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.zulip_ops.zulip.plugins.filter import scim
from ansible_collections.zulip_ops.zulip.plugins.filter.scim import FilterModule
from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import REALM_ITEM

ROLE_SPECS = Path(__file__).resolve().parents[4] / "roles" / "scim" / "meta" / "argument_specs.yml"


def test_filter_module_exposes_every_filter():
    assert FilterModule().filters() == {"scim_realms": scim.scim_realms, "scim_realm_names": scim.scim_realm_names,
                                        "scim_realm_labels": scim.scim_realm_labels,
                                        "scim_clients_to_change": scim.scim_clients_to_change}


ACME = {"subdomain": "acme", "client_name": "okta", "state": "present"}
ROOT_GONE = {"subdomain": "", "client_name": "entra-id", "state": "absent"}


@pytest.mark.parametrize("listing, expected", [
    (None, True),  # psql could not tell: zulip_scim_client lists them itself
    ({"realms": ["acme", ""], "clients": [["acme", "okta"]]}, False),
    ({"realms": ["acme", ""], "clients": []}, True),  # a missing row
    ({"realms": ["acme", ""], "clients": [["acme", "okta"], ["", "entra-id"]]}, True),  # a row to delete
    ({"realms": ["acme"], "clients": [["acme", "other"]]}, True),  # another name is not this client
])
def test_scim_clients_to_change(listing, expected):
    assert scim.scim_clients_to_change([ACME, ROOT_GONE], listing) is expected


# --------------------------------------------------------------------------- the contract with the modules
# The role hands scim_realms' items to zulip_scim_config and zulip_scim_client as they are
# (the glue filters scim_clients and scim_config_realms are gone), so the shapes must agree.


def test_the_role_realm_items_are_the_modules_realm_items():
    role = yaml.safe_load(ROLE_SPECS.read_text())["argument_specs"]["main"]["options"]["zulip_scim_realms"]
    assert set(role["options"]) == set(REALM_ITEM)


def test_both_modules_take_the_same_realm_items():
    from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_client, zulip_scim_config

    assert zulip_scim_config.ARGUMENT_SPEC["realms"]["options"] == REALM_ITEM
    assert zulip_scim_client.ARGUMENT_SPEC["realms"]["options"] == REALM_ITEM
    # The token is no realm key any more: it travels in its own no_log argument.
    assert "token" not in REALM_ITEM
    assert zulip_scim_config.ARGUMENT_SPEC["tokens"]["no_log"] is True


def test_scim_realms_items_only_hold_keys_the_modules_take():
    got = scim.scim_realms([{"subdomain": "acme", "create_guests_without_streams": False,
                             "custom_profile_field_map": {}, "state": "absent"}])
    assert set(got[0]) <= set(REALM_ITEM)
    # False and empty values are kept, only None is dropped (the module would write a None as "not set").
    assert got[0]["create_guests_without_streams"] is False and got[0]["custom_profile_field_map"] == {}


def test_scim_realms_does_not_modify_its_input():
    realms = [{"subdomain": "acme", "client_name": None}, {"subdomain": "beta", "state": "present"}]
    before = copy.deepcopy(realms)
    scim.scim_realms(realms, "okta", ["beta"])
    assert realms == before


# --------------------------------------------------------------------------- scim_realms


def test_scim_realms_fills_defaults_and_keeps_what_is_given():
    got = scim.scim_realms([{"subdomain": "acme"}, {"subdomain": "", "client_name": "entra-id",
                                                    "name_formatted_included": True, "state": "absent"}], "keycloak")
    assert got == [
        {"subdomain": "acme", "client_name": "keycloak", "state": "present", "name_formatted_included": False},
        {"subdomain": "", "client_name": "entra-id", "state": "absent", "name_formatted_included": True},
    ]


def test_scim_realms_null_values_take_the_default():
    got = scim.scim_realms([{"subdomain": "acme", "client_name": None, "create_guests_without_streams": None}])
    assert got == [{"subdomain": "acme", "client_name": "okta", "state": "present", "name_formatted_included": False}]


def test_scim_realms_disable_turns_realms_off_whatever_the_inventory_says():
    got = scim.scim_realms([{"subdomain": "acme"}, {"subdomain": "beta", "state": "present"}], "okta", ["beta"])
    assert [r["state"] for r in got] == ["present", "absent"]


@pytest.mark.parametrize("bad", ["acme", {"client_name": "okta"}, None])
def test_scim_realms_needs_a_subdomain(bad):
    with pytest.raises(AnsibleFilterError, match="subdomain"):
        scim.scim_realms([bad])


def test_scim_realms_with_a_host_refuses_an_empty_list_naming_the_host():
    with pytest.raises(AnsibleFilterError) as exc:
        scim.scim_realms([], "okta", [], "zulip1.example.com")
    assert str(exc.value) == ('zulip_scim_realms lists no realm for zulip1.example.com; list at least one '
                              '(subdomain "" is the root domain)')
    assert scim.scim_realms([], "okta", []) == []  # without a host, an empty list is just empty
    assert scim.scim_realms([{"subdomain": "acme"}], "okta", [], "zulip1")[0]["subdomain"] == "acme"


# --------------------------------------------------------------------------- what a disable run turns off

TWO = [{"subdomain": "acme"}, {"subdomain": ""}]


def states(realms: list) -> list:
    return [r["state"] for r in realms]


@pytest.mark.reliability(area="bad_input", case="a disable run (the role's disable entry point) that names no realm",
                         outcome="refused on the controller: names the host, its realms and both ways to name "
                                 "them; says nothing was changed")
def test_a_disable_run_that_names_no_realm_is_refused_naming_the_host_and_its_realms():
    # Before: disable_scim.yml filled the list with every realm when no -e was given.
    with pytest.raises(AnsibleFilterError) as exc:
        scim.scim_realms(TWO, "okta", [], "zulip1.example.com", disable_required=True)
    assert str(exc.value) == (
        'turning SCIM off needs the realms named, and none were for zulip1.example.com: name them, for example '
        '-e \'{"zulip_scim_disable_realms": ["acme"]}\' (zulip1.example.com lists: acme, "" (root domain)), or turn '
        'off every realm it lists with -e \'{"zulip_scim_disable_all_realms": true}\'. Nothing was changed')


def test_a_disable_run_turns_off_the_realms_named_or_all_of_them_when_asked():
    assert states(scim.scim_realms(TWO, "okta", ["acme"], "h", disable_required=True)) == ["absent", "present"]
    assert states(scim.scim_realms(TWO, "okta", [], "h", disable_all=True, disable_required=True)) == [
        "absent", "absent"]
    # -e zulip_scim_disable_all_realms=true gives a string: Ansible's words count, "false" is false.
    assert states(scim.scim_realms(TWO, "okta", [], "h", disable_all="true")) == ["absent", "absent"]
    assert states(scim.scim_realms(TWO, "okta", [], "h", disable_all="false")) == ["present", "present"]
    # Not a disable run: nothing named, nothing turned off, no refusal (enable_scim.yml).
    assert states(scim.scim_realms(TWO, "okta", [], "h")) == ["present", "present"]


@pytest.mark.parametrize("args, kwargs, message", [
    pytest.param(("okta", ["acme"], "h"), {"disable_all": True}, "zulip_scim_disable_realms and "
                 "zulip_scim_disable_all_realms: true are both set; set one of them", id="list and switch"),
    pytest.param(("okta", [], "h"), {"disable_all": "maybe"}, "zulip_scim_disable_all_realms must be true or false, "
                 "not 'maybe'", id="switch not a boolean"),
    pytest.param(("okta", ["zeta"], "h"), {"disable_required": True}, "zulip_scim_disable_realms names zeta, not a "
                 "realm listed in zulip_scim_realms", id="a realm the host does not list"),
    pytest.param(("okta", "acme", "h"), {"disable_required": True}, "zulip_scim_disable_realms must be a list of "
                 "realm subdomains, not the string 'acme'", id="a string"),
])
def test_a_disable_choice_that_is_not_clear_is_refused(args, kwargs, message):
    with pytest.raises(AnsibleFilterError) as exc:
        scim.scim_realms(TWO, *args, **kwargs)
    assert message in str(exc.value)


def test_the_role_defaults_and_the_disable_entry_point_agree_with_the_filter():
    specs = yaml.safe_load(ROLE_SPECS.read_text())["argument_specs"]
    defaults = yaml.safe_load((ROLE_SPECS.parents[1] / "defaults" / "main.yml").read_text())
    assert specs["main"]["options"]["zulip_scim_disable_all_realms"]["default"] is False
    assert defaults["zulip_scim_disable_all_realms"] is False
    # The disable entry point takes every option of main (validated alike), and the playbook uses it.
    assert specs["disable"]["options"] == specs["main"]["options"]
    playbook = yaml.safe_load((ROLE_SPECS.parents[3] / "playbooks" / "disable_scim.yml").read_text())
    include = playbook[0]["tasks"][0]["ansible.builtin.include_role"]
    assert include["tasks_from"] == "disable" and "vars" not in playbook[0]["tasks"][0]
