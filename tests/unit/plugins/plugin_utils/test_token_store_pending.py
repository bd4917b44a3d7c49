"""Pending tokens, settle and confirm: the pure decisions of _token_store (issue 24)."""

from __future__ import annotations

import pytest

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts

T0, T1, T2 = "Token0_" + "a" * 40, "Token1_" + "b" * 40, "Token2_" + "c" * 40
NOW = "2026-12-01T10:00:00Z"


def tokens(*made):
    pool = list(made)
    return lambda: pool.pop(0)


def test_a_retired_realm_enabled_again_goes_back_to_retired_with_its_own_times():
    entries = {"acme": {"token": T0, "created": "2026-01-01T00:00:00Z", "state": "retired",
                        "retired": "2026-06-01T00:00:00Z"}}
    outcome = ts.apply_request(entries, ts.make_request(["acme"], pending=True), now=NOW, new_token=tokens(T1))
    assert outcome.generated == ["acme"] and entries["acme"]["pending"] == NOW
    # The host never got it (no token) or still has the retired one: both are "went back".
    assert ts.host_went_back(entries["acme"], None) and ts.host_went_back(entries["acme"], T0)
    assert not ts.host_went_back(entries["acme"], T1)
    assert ts.settle(entries, {"acme": None}, "2026-12-01T10:05:00Z") == ["acme"]
    assert entries["acme"] == {"token": T1, "created": NOW, "state": "retired", "retired": "2026-12-01T10:05:00Z",
                               "rolled_back": "2026-12-01T10:05:00Z",
                               "previous": [{"token": T0, "created": "2026-01-01T00:00:00Z", "replaced": NOW,
                                             "retired": "2026-06-01T00:00:00Z"}]}


def test_an_active_realm_whose_host_has_no_token_is_not_taken_for_one_that_went_back():
    entries = {"acme": {"token": T0, "created": NOW, "state": "active"}}
    ts.apply_request(entries, ts.make_request(["acme"], rotate=["acme"], pending=True), now=NOW, new_token=tokens(T1))
    assert ts.settle(entries, {"acme": None}, NOW) == [] and entries["acme"]["token"] == T1


def test_without_pending_nothing_is_marked_and_settle_does_nothing():
    entries = {}
    ts.apply_request(entries, ts.make_request(["acme"]), now=NOW, new_token=tokens(T0))
    assert "pending" not in entries["acme"]
    assert ts.settle(entries, {"acme": None}, NOW) == []


def test_an_adopted_token_is_in_force_already():
    entries = {}
    outcome = ts.apply_request(entries, ts.make_request(["acme"], adopt={"acme": T0}, pending=True), now=NOW,
                               new_token=tokens(T1))
    assert outcome.adopted == ["acme"] and outcome.pending == [] and "pending" not in entries["acme"]


@pytest.mark.parametrize("key", ["pending", "rolled_back"])
def test_the_marks_are_checked_like_every_time(key):
    ts.check_host_entries({"acme": {"token": T0, "created": NOW, "state": "active", key: NOW}}, "w")
    with pytest.raises(ts.TokenStoreError, match=r"w\['acme'\]\.%s: expected a non-empty string" % key):
        ts.check_host_entries({"acme": {"token": T0, "created": NOW, "state": "active", key: 3}}, "w")


def test_canonical_order_keeps_the_marks():
    entry = {"previous": [{"rolled_back": NOW, "replaced": NOW, "created": NOW, "token": T1}], "pending": NOW,
             "state": "active", "created": NOW, "token": T2}
    assert list(ts.canonical_entry(entry)) == ["token", "created", "state", "pending", "previous"]
    assert list(ts.canonical_entry(entry)["previous"][0]) == ["token", "created", "replaced", "rolled_back"]
