"""Unit tests for plugins/filter/scim.py."""

from __future__ import annotations

import copy

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.zulip_ops.zulip.plugins.filter import scim
from ansible_collections.zulip_ops.zulip.plugins.filter.scim import FilterModule, scim_clients, scim_config_realms

TOKENS = {"acme": "acme-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "": "root-token-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
          "beta": "beta-token-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"}


def realm(subdomain, **extra):
    item = {"subdomain": subdomain, "client_name": "okta", "name_formatted_included": False,
            "create_guests_without_streams": None, "custom_profile_field_map": None, "state": "present"}
    item.update(extra)
    return item


# --------------------------------------------------------------------------- scim_clients

def test_scim_clients_maps_realm_items():
    realms = [realm("acme"), realm("", client_name="entra-id"), realm("beta", state="absent")]
    assert scim_clients(realms) == [
        {"realm": "acme", "name": "okta", "state": "present"},
        {"realm": "", "name": "entra-id", "state": "present"},
        {"realm": "beta", "name": "okta", "state": "absent"},
    ]


def test_scim_clients_default_state_is_present():
    assert scim_clients([{"subdomain": "acme", "client_name": "okta"}]) == [
        {"realm": "acme", "name": "okta", "state": "present"}]


def test_scim_clients_carries_only_client_keys():
    [client] = scim_clients([realm("acme", token="must-not-travel", custom_profile_field_map={"a": "b"})])
    assert set(client) == {"realm", "name", "state"}


def test_scim_clients_empty():
    assert scim_clients([]) == []


# --------------------------------------------------------------------------- scim_config_realms

def test_config_realms_drop_unset_keys_and_add_tokens():
    result = scim_config_realms([realm("acme"), realm("", name_formatted_included=True, create_guests_without_streams=False)],
                                TOKENS)
    assert result == [
        {"subdomain": "acme", "client_name": "okta", "name_formatted_included": False, "state": "present",
         "token": TOKENS["acme"]},
        {"subdomain": "", "client_name": "okta", "name_formatted_included": True,
         "create_guests_without_streams": False, "state": "present", "token": TOKENS[""]},
    ]


def test_false_and_empty_values_are_kept_only_none_is_dropped():
    [item] = scim_config_realms([realm("acme", create_guests_without_streams=False, custom_profile_field_map={})],
                                TOKENS)
    assert item["create_guests_without_streams"] is False
    assert item["custom_profile_field_map"] == {}
    assert item["name_formatted_included"] is False


def test_optional_keys_pass_through():
    field_map = {"title": "job_title", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "dept"}
    [item] = scim_config_realms([realm("acme", custom_profile_field_map=field_map)], TOKENS)
    assert item["custom_profile_field_map"] == field_map


def test_absent_realms_get_no_token_and_need_none():
    result = scim_config_realms([realm("acme", state="absent"), realm("gone", state="absent")], TOKENS)
    assert result == [
        {"subdomain": "acme", "client_name": "okta", "name_formatted_included": False, "state": "absent"},
        {"subdomain": "gone", "client_name": "okta", "name_formatted_included": False, "state": "absent"},
    ]
    assert all("token" not in item for item in result)


def test_missing_state_means_present():
    [item] = scim_config_realms([{"subdomain": "beta", "client_name": "okta"}], TOKENS)
    assert item == {"subdomain": "beta", "client_name": "okta", "token": TOKENS["beta"]}


def test_unknown_keys_are_not_passed_on():
    [item] = scim_config_realms([realm("acme", token="from-the-item", extra="x", bearer_token="y")], TOKENS)
    assert "extra" not in item and "bearer_token" not in item
    assert item["token"] == TOKENS["acme"]


def test_root_realm_token_is_looked_up_by_empty_string():
    [item] = scim_config_realms([realm("")], {"": "r" * 40})
    assert item["token"] == "r" * 40


def test_missing_token_error_names_only_the_realm():
    with pytest.raises(AnsibleFilterError) as info:
        scim_config_realms([realm("acme"), realm("nope")], TOKENS)
    msg = str(info.value)
    assert "no token for realm 'nope'" in msg
    for token in TOKENS.values():
        assert token not in msg
    assert "acme" not in msg and "beta" not in msg


def test_missing_root_token():
    with pytest.raises(AnsibleFilterError, match="no token for realm ''"):
        scim_config_realms([realm("")], {"acme": TOKENS["acme"]})


def test_inputs_are_not_modified():
    realms = [realm("acme"), realm("beta", state="absent")]
    tokens = dict(TOKENS)
    before = copy.deepcopy((realms, tokens))
    scim_config_realms(realms, tokens)
    scim_clients(realms)
    assert (realms, tokens) == before


def test_config_keys_are_what_zulip_scim_config_takes():
    """Contract with the module the filter feeds: every key it passes is an option there."""
    from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_config

    options = set(zulip_scim_config.ARGUMENT_SPEC["realms"]["options"])
    assert set(scim._CONFIG_KEYS) | {"token"} == options


def test_client_keys_are_what_zulip_scim_client_takes():
    from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_client

    documented = yaml.safe_load(zulip_scim_client.DOCUMENTATION)["options"]["clients"]["suboptions"]
    [client] = scim_clients([realm("acme")])
    assert set(client) == set(documented)


def test_filter_module_exposes_every_filter():
    filters = FilterModule().filters()
    assert filters == {"scim_clients": scim_clients, "scim_config_realms": scim_config_realms,
                       "scim_realms": scim.scim_realms, "scim_rejected_tokens": scim.scim_rejected_tokens}


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


# --------------------------------------------------------------------------- scim_rejected_tokens


def test_scim_rejected_tokens_merges_maps_in_order():
    got = scim.scim_rejected_tokens({"b": TOKENS["beta"], "a": TOKENS["acme"]}, {"": TOKENS[""]})
    assert got == [{"realm": "a", "token": TOKENS["acme"]}, {"realm": "b", "token": TOKENS["beta"]},
                   {"realm": "", "token": TOKENS[""]}]
    assert scim.scim_rejected_tokens({}, {}) == []
