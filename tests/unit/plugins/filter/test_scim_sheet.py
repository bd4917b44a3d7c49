"""The IdP connection sheet: per IdP what Zulip's help centre says to enter, never a token."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.zulip_ops.zulip.plugins.filter import scim as scim_filters
from ansible_collections.zulip_ops.zulip.plugins.filter import scim_sheet

READ = "ansible-vault view /inv/.zulip_scim_tokens.vault.yml"


def realm(subdomain: str, client_name: str = "okta", **extra) -> dict:
    return dict({"subdomain": subdomain, "client_name": client_name, "name_formatted_included": False,
                 "state": "present"}, **extra)


def sheet(realms: list, version: str = "11.2") -> str:
    return scim_sheet.scim_connection_sheet(realms, "zulip.example.com", "web1", version, READ)


def test_okta_as_the_help_centre_says():
    text = sheet([realm("acme")])
    assert "## Realm acme: Okta" in text
    assert '"SCIM 2.0 Test App (Header Auth)"' in text
    assert "- Base URL: `https://acme.zulip.example.com/scim/v2`" in text
    assert "- API Token: `Bearer ` followed by the token of realm acme" in text
    assert "username format: Email" in text
    assert "Create Users, Update User Attributes, Deactivate Users" in text
    assert '"Push Groups"' in text and "never deletes a group" in text
    assert READ in text


def test_entra_id_gets_the_tenant_url_and_the_bare_token():
    text = sheet([realm("", "entra-id", name_formatted_included=True)])
    assert '## Realm "" (root domain): Microsoft Entra ID' in text
    assert "Non-gallery" in text and "Provisioning Mode: Automatic" in text
    assert "- Tenant URL: `https://zulip.example.com/scim/v2/?aadOptscim062020`" in text
    assert "itself, without `Bearer`" in text
    assert "userName from mail" in text
    assert "leave group provisioning off" in text
    assert scim_sheet.scim_sheet_warnings([realm("", "entra-id", name_formatted_included=True)],
                                          "zulip.example.com", "web1", "11.2", READ) == []


def test_other_clients_get_the_base_url_and_the_header():
    text = sheet([realm("beta", "keycloak")])
    assert "## Realm beta: any SCIM 2.0 client" in text
    assert "`https://beta.zulip.example.com/scim/v2`" in text and "`Authorization: Bearer `" in text


@pytest.mark.parametrize("client_name, idp", [("okta", "okta"), ("Okta prod", "okta"), ("entra-id", "entra_id"),
                                              ("Azure AD", "entra_id"), ("aad", "entra_id"), ("authentik", "authentik"),
                                              ("keycloak", "other")])
def test_the_idp_defaults_from_the_client_name(client_name, idp):
    from ansible_collections.zulip_ops.zulip.plugins.module_utils._idps import idp_of

    assert idp_of(realm("acme", client_name)) == idp
    assert idp_of(realm("acme", client_name, idp="other")) == "other"


def test_a_mismatched_name_formatted_included_is_a_warning():
    items = [realm("acme", "okta", name_formatted_included=True), realm("beta", "whatever", idp="entra_id")]
    warnings = scim_sheet.scim_sheet_warnings(items, "zulip.example.com", "web1", "11.2", READ)
    assert len(warnings) == 2
    assert warnings[0].startswith("realm acme: name_formatted_included is true, but Okta sends")
    assert "set it to true" in warnings[1]
    assert "WARNING: realm acme" in sheet(items)


def test_groups_before_11_are_not_offered():
    assert "not over SCIM before Zulip 11.0" in sheet([realm("acme")], version="9.2")


def test_absent_realms_are_left_out_and_no_token_is_ever_there():
    token = "T" * 43
    text = sheet([realm("acme", token=token), realm("gone", state="absent")])
    assert "gone" not in text and token not in text


def test_bad_input_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="EXTERNAL_HOST is unknown"):
        scim_sheet.scim_connection_sheet([realm("acme")], "", "web1", "11.2", READ)
    with pytest.raises(AnsibleFilterError, match="list of realm items"):
        scim_sheet.scim_connection_sheet("acme", "zulip.example.com", "web1", "11.2", READ)


def test_realm_labels_in_plain_words():
    assert scim_filters.scim_realm_labels(["acme", ""]) == 'acme, "" (root domain)'
    with pytest.raises(AnsibleFilterError):
        scim_filters.scim_realm_labels("acme")


def test_an_unknown_idp_is_refused_by_the_realm_rule():
    with pytest.raises(AnsibleFilterError, match=r"idp: 'onelogin' is not an identity provider"):
        scim_filters.scim_realms([{"subdomain": "acme", "idp": "onelogin"}])


def test_authentik_gets_its_provider_the_bare_token_and_an_email_username():
    text = sheet([realm("acme", "authentik", name_formatted_included=True)])
    assert "## Realm acme: authentik" in text
    assert "SCIM Provider" in text and "backchannel provider" in text
    assert "- URL: `https://acme.zulip.example.com/scim/v2`" in text
    assert "itself, without `Bearer`" in text
    assert '{\\"userName\\": request.user.email}' not in text and '{"userName": request.user.email}' in text
    assert "authentik syncs groups" in text
    assert scim_sheet.scim_sheet_warnings([realm("acme", "authentik")], "zulip.example.com", "web1", "11.2",
                                          READ) == [
        "realm acme: name_formatted_included is false, but authentik sends the user's whole name as "
        "name.formatted (set it to true), so Zulip would refuse to create users"]


@pytest.mark.parametrize("item, expected", [
    ({"subdomain": "acme"}, False),  # client_name okta
    ({"subdomain": "acme", "client_name": "Entra ID prod"}, True),
    ({"subdomain": "acme", "client_name": "authentik"}, True),
    ({"subdomain": "acme", "client_name": "keycloak"}, False),
    ({"subdomain": "acme", "client_name": "whatever", "idp": "entra_id"}, True),
    ({"subdomain": "acme", "client_name": "Entra ID prod", "name_formatted_included": False}, False),
    ({"subdomain": "acme", "client_name": "okta", "name_formatted_included": True}, True),
])
def test_name_formatted_included_defaults_to_what_the_idp_sends(item, expected):
    """The role's realm list (filter scim_realms) and the modules' realm items take the same default."""
    from ansible_collections.zulip_ops.zulip.plugins.module_utils._argspec import with_realm_defaults

    role_item = scim_filters.scim_realms([item])[0]
    assert role_item["name_formatted_included"] is expected
    assert with_realm_defaults(item)["name_formatted_included"] is expected
    # What the role fills in, the sheet finds right: no warning for a realm left to its default.
    if "name_formatted_included" not in item:
        assert scim_sheet.scim_sheet_warnings([role_item], "zulip.example.com", "web1", "11.2", READ) == []


def test_every_idp_is_one_row_of_one_table():
    """The idp choices of the modules and the role, the sheet's titles and the defaults read one table."""
    from ansible_collections.zulip_ops.zulip.plugins.module_utils import _argspec, _idps

    assert _idps.IDPS == ("okta", "entra_id", "authentik", "other")
    assert _argspec.REALM_ITEM["idp"]["choices"] == list(_idps.IDPS)
    for name in _idps.IDPS:
        text = sheet([realm("acme", "x", idp=name, name_formatted_included=bool(
            _idps.provider(name).name_formatted_included))])
        assert "## Realm acme: %s" % _idps.provider(name).title in text


def test_the_sheet_says_which_realms_are_automated(monkeypatch):
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _idp_apis

    monkeypatch.setattr(_idp_apis, "BACKEND_MODULES", {"authentik": "unused"})
    items = [realm("acme", "authentik", name_formatted_included=True, idp_settings={"provider_id": 3}),
             realm("beta", "authentik", name_formatted_included=True),
             realm("gamma", "keycloak", idp_settings={"id": 1})]
    text = sheet(items)
    sections = text.split("## Realm ")
    assert "- Automated: each run that changes the token gives it to authentik" in sections[1]
    assert "Automated" not in sections[2] and "Automated" not in sections[3]


def test_the_sheet_warns_of_what_zulip_refuses():
    """Real Zulip 5.6 and 9.2 (tests/fidelity): 501 to a PATCH of name.givenName, 500 to a PATCH of the name object."""
    entra = sheet([realm("acme", "entra-id", name_formatted_included=True)])
    assert "delete the name.givenName and name.familyName mappings" in entra
    other = sheet([realm("acme", "keycloak")])
    assert "500 to a PATCH of the whole name object" in other and "501 to PATCH add and remove" in other
