"""The pure decisions of the token store: no files, no Ansible run."""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as ts

NOW = "2026-11-28T16:40:00Z"
LATER = "2026-12-01T09:00:00Z"


def counter_tokens(prefix: str = "tok"):
    """Deterministic, distinct tokens: tok1, tok2, ..."""
    numbers = itertools.count(1)
    return lambda: "%s%d" % (prefix, next(numbers))


def active(token: str, created: str = NOW, previous: list | None = None) -> dict:
    entry = {"token": token, "created": created, "state": "active"}
    if previous is not None:
        entry["previous"] = previous
    return entry


def run(entries, now=NOW, new_token=None, **request):
    request.setdefault("realms", [])
    req = ts.make_request(**request)
    return ts.apply_request(entries, req, now=now, new_token=new_token or counter_tokens())


# ------------------------------------------------------------------ make_request


class TestMakeRequest:
    def test_defaults(self):
        req = ts.make_request(["acme", ""])
        assert req.realms == ("acme", "")
        assert req.rotate == frozenset() and req.retire == frozenset() and dict(req.adopt) == {}

    def test_duplicates_dropped_order_kept(self):
        assert ts.make_request(["b", "a", "b", ""]).realms == ("b", "a", "")

    @pytest.mark.parametrize("bad", ["Acme", "-acme", "acme-", "a_b", "a.b", "a" * 64, " acme", None, 5])
    def test_invalid_realm(self, bad):
        with pytest.raises(ts.TokenStoreError, match="realms: not a valid Zulip subdomain"):
            ts.make_request(["ok", bad])

    @pytest.mark.parametrize("good", ["a", "a1", "a-b", "a" * 63, "0", ""])
    def test_valid_realm(self, good):
        assert ts.make_request([good]).realms == (good,)

    def test_realms_not_a_list(self):
        with pytest.raises(ts.TokenStoreError, match="realms must be a list"):
            ts.make_request("acme")

    def test_invalid_rotate_and_retire_named(self):
        with pytest.raises(ts.TokenStoreError, match="^rotate: "):
            ts.make_request(["acme"], rotate=["ACME"])
        with pytest.raises(ts.TokenStoreError, match="^retire: "):
            ts.make_request(["acme"], retire=["x y"])

    def test_rotate_must_be_requested(self):
        with pytest.raises(ts.TokenStoreError, match=r'rotate lists realms that are not in realms: other, "" \(root domain\)'):
            ts.make_request(["acme"], rotate=["other", ""])

    def test_realm_cannot_be_requested_and_retired(self):
        with pytest.raises(ts.TokenStoreError, match="realms and retire both list: acme"):
            ts.make_request(["acme"], retire=["acme"])

    def test_adopt_must_be_mapping(self):
        with pytest.raises(ts.TokenStoreError, match="adopt must be a dict"):
            ts.make_request(["acme"], adopt=["x"])

    def test_adopt_filters_unrequested_and_empty(self):
        req = ts.make_request(["acme", "b", ""], adopt={"acme": "T1", "b": "", "": None, "zzz": "T3", "Bad!": "x"})
        assert dict(req.adopt) == {"acme": "T1"}

    @pytest.mark.parametrize("bad", ["has space", "tab\there", "nl\n", 123, "\x00x", 'quo"te', "quo'te", "ünï"])
    def test_adopt_unusable_token_not_echoed(self, bad):
        with pytest.raises(ts.TokenStoreError) as exc:
            ts.make_request(["acme"], adopt={"acme": bad})
        assert "adopt[acme] is not a usable token" in str(exc.value)
        assert str(bad) not in str(exc.value)

    def test_adopt_weak_but_writable_token_is_accepted(self):
        assert dict(ts.make_request(["acme"], adopt={"acme": "short"}).adopt) == {"acme": "short"}

    def test_adopt_none_is_empty(self):
        assert dict(ts.make_request(["a"], adopt=None).adopt) == {}


# ------------------------------------------------------------------ tokens


class TestTokenFactory:
    def test_default_is_256_bits_and_urlsafe(self):
        make = ts.token_factory()
        tokens = {make() for dummy in range(200)}
        assert len(tokens) == 200
        for token in tokens:
            assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 bytes -> 43 base64url characters

    def test_more_bytes_longer_tokens(self):
        assert len(ts.token_factory(48)()) == 64

    def test_maximum(self):
        assert len(ts.token_factory(1024)()) == 1366
        with pytest.raises(ts.TokenStoreError, match="at most 1024, got 1025"):
            ts.token_factory(1025)

    @pytest.mark.parametrize("bad", [31, 0, -1, "32", 32.0, True, None])
    def test_minimum(self, bad):
        with pytest.raises(ts.TokenStoreError, match="at least 32"):
            ts.token_factory(bad)

    def test_collision_is_retried(self):
        tokens = iter(["dup", "dup", "dup", "fresh"])
        entries = {"a": active("dup")}
        outcome = run(entries, realms=["a", "b"], new_token=lambda: next(tokens))
        assert outcome.tokens == {"a": "dup", "b": "fresh"}

    def test_utc_now_format(self):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ts.utc_now())


# ------------------------------------------------------------------ decisions


class TestGenerate:
    def test_generates_only_missing(self):
        entries = {"acme": active("old")}
        outcome = run(entries, realms=["acme", ""])
        assert outcome.tokens == {"acme": "old", "": "tok1"}
        assert outcome.generated == [""]
        assert outcome.changed
        assert entries[""] == {"token": "tok1", "created": NOW, "state": "active"}
        assert entries["acme"] == active("old")

    def test_nothing_to_do(self):
        entries = {"acme": active("old")}
        before = copy.deepcopy(entries)
        outcome = run(entries, realms=["acme"])
        assert outcome.tokens == {"acme": "old"}
        assert not outcome.changed
        assert entries == before
        assert (outcome.generated, outcome.rotated, outcome.adopted, outcome.retired, outcome.conflicts) == ([],) * 5

    def test_empty_request(self):
        entries: dict = {}
        outcome = run(entries, realms=[])
        assert outcome.tokens == {} and not outcome.changed and entries == {}

    def test_tokens_unique_across_realms(self):
        entries: dict = {}
        outcome = run(entries, realms=["a", "b", "c"], new_token=ts.token_factory())
        assert len(set(outcome.tokens.values())) == 3


class TestRotate:
    def test_rotate_keeps_history_newest_first(self):
        entries = {"acme": active("t0", created="2026-01-01T00:00:00Z")}
        first = run(entries, realms=["acme"], rotate=["acme"], new_token=counter_tokens("a"))
        assert first.tokens == {"acme": "a1"}
        assert first.previous_tokens == {"acme": "t0"}
        assert first.rotated == ["acme"] and first.generated == []
        second = run(entries, now=LATER, realms=["acme"], rotate=["acme"], new_token=counter_tokens("b"))
        assert second.previous_tokens == {"acme": "a1"}
        assert entries["acme"] == {
            "token": "b1",
            "created": LATER,
            "state": "active",
            "previous": [
                {"token": "a1", "created": NOW, "replaced": LATER},
                {"token": "t0", "created": "2026-01-01T00:00:00Z", "replaced": NOW},
            ],
        }

    def test_rotate_of_missing_realm_just_generates(self):
        entries: dict = {}
        outcome = run(entries, realms=["acme"], rotate=["acme"])
        assert outcome.generated == ["acme"] and outcome.rotated == [] and outcome.previous_tokens == {}
        assert entries["acme"] == active("tok1")

    def test_rotate_never_reuses_an_old_token(self):
        entries = {"acme": active("tok1", previous=[{"token": "tok2", "created": NOW, "replaced": NOW}])}
        outcome = run(entries, realms=["acme"], rotate=["acme"])
        assert outcome.tokens == {"acme": "tok3"}

    def test_only_rotated_realms_change(self):
        entries = {"a": active("A"), "b": active("B")}
        outcome = run(entries, realms=["a", "b"], rotate=["b"])
        assert outcome.tokens == {"a": "A", "b": "tok1"}
        assert outcome.previous_tokens == {"b": "B"}


class TestRetire:
    def test_retire_keeps_token(self):
        entries = {"old": active("O"), "acme": active("A")}
        outcome = run(entries, realms=["acme"], retire=["old"])
        assert outcome.retired == ["old"]
        assert outcome.tokens == {"acme": "A"}
        assert entries["old"] == {"token": "O", "created": NOW, "state": "retired", "retired": NOW}
        assert outcome.changed

    def test_retire_missing_or_retired_is_no_change(self):
        entries = {"old": {"token": "O", "created": NOW, "state": "retired", "retired": NOW}}
        before = copy.deepcopy(entries)
        outcome = run(entries, now=LATER, realms=[], retire=["old", "never"])
        assert outcome.retired == [] and not outcome.changed and entries == before

    def test_reactivation_gets_a_new_token(self):
        entries = {"old": {"token": "O", "created": "c0", "state": "retired", "retired": "r0"}}
        outcome = run(entries, now=LATER, realms=["old"])
        assert outcome.tokens == {"old": "tok1"}
        assert outcome.generated == ["old"]
        assert outcome.rotated == [] and outcome.previous_tokens == {}
        assert entries["old"] == {
            "token": "tok1",
            "created": LATER,
            "state": "active",
            "previous": [{"token": "O", "created": "c0", "replaced": LATER, "retired": "r0"}],
        }

    def test_reactivation_with_rotate_does_not_rotate_twice(self):
        entries = {"old": {"token": "O", "created": "c0", "state": "retired", "retired": "r0"}}
        outcome = run(entries, realms=["old"], rotate=["old"])
        assert outcome.generated == ["old"] and outcome.rotated == []
        assert len(entries["old"]["previous"]) == 1


class TestAdopt:
    def test_adopt_when_store_has_none(self):
        entries: dict = {}
        outcome = run(entries, realms=["acme", "b"], adopt={"acme": "HOST"})
        assert outcome.tokens == {"acme": "HOST", "b": "tok1"}
        assert outcome.adopted == ["acme"] and outcome.generated == ["b"] and outcome.conflicts == []
        assert entries["acme"] == active("HOST")

    def test_store_wins_on_conflict(self):
        entries = {"acme": active("VAULT")}
        outcome = run(entries, realms=["acme"], adopt={"acme": "HOST"})
        assert outcome.tokens == {"acme": "VAULT"}
        assert outcome.conflicts == ["acme"] and outcome.adopted == []
        assert not outcome.changed

    def test_same_token_is_no_conflict(self):
        outcome = run({"acme": active("SAME")}, realms=["acme"], adopt={"acme": "SAME"})
        assert outcome.conflicts == [] and outcome.adopted == [] and not outcome.changed

    def test_adopted_then_rotated(self):
        entries: dict = {}
        outcome = run(entries, realms=["acme"], adopt={"acme": "HOST"}, rotate=["acme"])
        assert outcome.adopted == ["acme"] and outcome.rotated == ["acme"]
        assert outcome.previous_tokens == {"acme": "HOST"}
        assert outcome.tokens == {"acme": "tok1"}
        assert entries["acme"]["previous"][0]["token"] == "HOST"

    def test_retired_token_is_not_adopted_back(self):
        entries = {"old": {"token": "O", "created": NOW, "state": "retired", "retired": NOW}}
        outcome = run(entries, realms=["old"], adopt={"old": "O"})
        assert outcome.tokens == {"old": "tok1"}
        assert outcome.generated == ["old"] and outcome.adopted == [] and outcome.conflicts == ["old"]

    def test_replaced_token_is_not_adopted_back(self):
        entries = {"old": {"token": "O", "created": NOW, "state": "retired", "retired": NOW,
                           "previous": [{"token": "P", "created": NOW, "replaced": NOW}]}}
        outcome = run(entries, realms=["old"], adopt={"old": "P"})
        assert outcome.tokens == {"old": "tok1"} and outcome.conflicts == ["old"]

    def test_other_host_token_on_retired_realm_is_adopted(self):
        entries = {"old": {"token": "O", "created": NOW, "state": "retired", "retired": NOW}}
        outcome = run(entries, now=LATER, realms=["old"], adopt={"old": "HANDSET"})
        assert outcome.tokens == {"old": "HANDSET"} and outcome.adopted == ["old"]
        assert entries["old"]["previous"][0]["token"] == "O"

    def test_another_realms_token_is_not_adopted(self):
        entries = {"acme": active("SHARED")}
        outcome = run(entries, realms=["acme", "b"], adopt={"acme": "SHARED", "b": "SHARED"})
        assert outcome.tokens == {"acme": "SHARED", "b": "tok1"}
        assert outcome.adopted == [] and outcome.generated == ["b"] and outcome.conflicts == ["b"]

    def test_one_host_token_for_two_new_realms_is_adopted_once(self):
        outcome = run({}, realms=["a", "b"], adopt={"a": "SAME", "b": "SAME"})
        assert outcome.tokens == {"a": "SAME", "b": "tok1"}
        assert outcome.adopted == ["a"] and outcome.conflicts == ["b"]

    def test_adopt_of_retired_realm_in_retire_is_ignored(self):
        entries = {"old": active("O")}
        outcome = run(entries, realms=[], retire=["old"], adopt={"old": "HOST"})
        assert outcome.retired == ["old"] and outcome.adopted == [] and entries["old"]["token"] == "O"


# ------------------------------------------------------------------ structure


def valid_entries() -> dict:
    return {
        "": active("ROOT"),
        "acme": {
            "token": "A",
            "created": NOW,
            "state": "retired",
            "retired": LATER,
            "previous": [{"token": "P", "created": NOW, "replaced": NOW, "retired": NOW}],
        },
    }


class TestStructure:
    def test_valid(self):
        entries = valid_entries()
        assert ts.check_host_entries(entries, "w") is entries

    def test_previous_null_is_empty(self):
        entries = {"a": dict(active("T"), previous=None)}
        ts.check_host_entries(entries, "w")
        assert entries["a"]["previous"] == []

    @pytest.mark.parametrize(
        "mutate, message",
        [
            (lambda e: e.__setitem__("Bad", active("T")), r"w: 'Bad' is not a valid Zulip subdomain"),
            (lambda e: e.__setitem__("Xy_" * 14 + "z", active("T")), r"w: <a 43-character key, not shown> is not a valid"),
            (lambda e: e.__setitem__("acme", "SECRETVALUE"), r"w\['acme'\]: expected a mapping, found str"),
            (lambda e: e[""].pop("token"), r"w\[''\]: missing key\(s\) token"),
            (lambda e: e[""].__setitem__("stat", "x"), r"w\[''\]: unknown key\(s\) 'stat'"),
            (lambda e: e[""].__setitem__("token", 5), r"w\[''\]\.token: expected a non-empty string, found int"),
            (lambda e: e[""].__setitem__("token", ""), r"w\[''\]\.token: expected a non-empty string, found str"),
            (lambda e: e[""].__setitem__("token", "SECRET VALUE"), r"w\[''\]\.token: not a usable token"),
            (lambda e: e[""].__setitem__("created", None), r"w\[''\]\.created: expected a non-empty string"),
            (lambda e: e[""].__setitem__("state", "gone"), r"w\[''\]\.state: expected one of active, retired"),
            (lambda e: e["acme"].__setitem__("retired", 1), r"w\['acme'\]\.retired: expected a non-empty string"),
            (lambda e: e["acme"].__setitem__("previous", {}), r"w\['acme'\]\.previous: expected a list, found dict"),
            (lambda e: e["acme"]["previous"].append("SECRETVALUE"), r"w\['acme'\]\.previous\[1\]: expected a mapping"),
            (lambda e: e["acme"]["previous"][0].pop("replaced"), r"previous\[0\]: missing key\(s\) replaced"),
            (lambda e: e["acme"]["previous"][0].__setitem__("token", ["SECRETVALUE"]),
             r"w\['acme'\]\.previous\[0\]\.token: expected a non-empty string, found list"),
        ],
    )
    def test_errors_say_where_and_never_show_tokens(self, mutate, message):
        entries = valid_entries()
        mutate(entries)
        with pytest.raises(ts.TokenStoreError, match=message) as exc:
            ts.check_host_entries(entries, "w")
        for secret in ("SECRET", "ROOT", "'A'", "'P'"):
            assert secret not in str(exc.value)

    def test_not_a_mapping(self):
        with pytest.raises(ts.TokenStoreError, match="w: expected a mapping of realm to entry, found list"):
            ts.check_host_entries([], "w")

    def test_show_key(self):
        assert ts.show_key("short") == "'short'"
        assert ts.show_key(3) == "3"
        assert ts.show_key("y" * 25) == "<a 25-character key, not shown>"

    def test_canonical_entry_order(self):
        entry = {"previous": [{"replaced": "r", "token": "p", "created": "c"}], "state": "active",
                 "created": NOW, "token": "T"}
        out = ts.canonical_entry(entry)
        assert list(out) == ["token", "created", "state", "previous"]
        assert list(out["previous"][0]) == ["token", "created", "replaced"]
        assert "previous" not in ts.canonical_entry(dict(active("T"), previous=[]))


def test_weak_adopted_tokens_are_listed_strong_ones_not():
    entries: dict = {}
    outcome = run(entries, realms=["acme", "beta"], adopt={"acme": "weak", "beta": "a-strong-host-token-0123"})
    assert outcome.adopted == ["acme", "beta"]
    assert outcome.weak_adopted == ["acme"]
    assert entries["acme"]["token"] == "weak"


def test_stored_token_with_a_quote_is_refused_and_not_shown():
    entries = {"acme": active('stored"token-0123456789')}
    with pytest.raises(ts.TokenStoreError) as exc:
        ts.check_host_entries(entries, "w")
    assert "w['acme'].token: not a usable token (the token contains whitespace, quotes" in str(exc.value)
    assert "stored" not in str(exc.value)


def test_outcome_changed_matches_mutation():
    """Every decision that mutates entries shows up in Outcome.changed, and vice versa."""
    cases = [
        dict(realms=["a"]),
        dict(realms=["a", "n"]),
        dict(realms=["a"], rotate=["a"]),
        dict(realms=[], retire=["a"]),
        dict(realms=[], retire=["r"]),
        dict(realms=["r"]),
        dict(realms=["a"], adopt={"a": "X"}),
        dict(realms=["n"], adopt={"n": "X"}),
    ]
    for request in cases:
        entries = {"a": active("A"), "r": {"token": "R", "created": NOW, "state": "retired", "retired": NOW}}
        before = copy.deepcopy(entries)
        outcome = run(entries, **request)
        assert outcome.changed == (entries != before), request


def test_decisions_import_without_ansible():
    """The pure half must not pull in ansible-core (a KV v2 backend or a plain script can use it)."""
    collections = Path(ts.__file__).parents[5]  # the folder the collection was imported from
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from ansible_collections.zulip_ops.zulip.plugins.plugin_utils import _token_store as token_store\n"
        "loaded = [m for m in sys.modules if m == 'ansible' or m.startswith('ansible.')]\n"
        "assert not loaded, loaded\n" % str(collections)
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


class TestHistoryBound:
    def history(self, n: int) -> list:
        return [{"token": "old%d-%s" % (i, "x" * 40), "created": NOW, "replaced": NOW} for i in range(n)]

    def test_a_rotation_keeps_only_the_newest_entries(self):
        entries = {"acme": active("cur-" + "y" * 40, previous=self.history(5))}
        out = run(entries, realms=["acme"], rotate=["acme"], history=3)
        assert out.rotated == ["acme"]
        kept = [item["token"] for item in entries["acme"]["previous"]]
        assert kept == ["cur-" + "y" * 40, "old0-" + "x" * 40, "old1-" + "x" * 40]

    def test_the_default_keeps_five(self):
        entries = {"acme": active("cur-" + "y" * 40, previous=self.history(9))}
        run(entries, realms=["acme"], rotate=["acme"])
        assert len(entries["acme"]["previous"]) == ts.DEFAULT_HISTORY == 5

    def test_a_run_that_changes_nothing_does_not_trim(self):
        entries = {"acme": active("cur-" + "y" * 40, previous=self.history(9))}
        out = run(entries, realms=["acme"], history=2)
        assert not out.changed and len(entries["acme"]["previous"]) == 9

    def test_zero_keeps_no_history(self):
        entries = {"acme": active("cur-" + "y" * 40, previous=self.history(2))}
        run(entries, realms=["acme"], rotate=["acme"], history=0)
        assert "previous" not in entries["acme"] or entries["acme"]["previous"] == []

    @pytest.mark.parametrize("bad", [-1, "3", True, 1.5])
    def test_a_bad_history_is_refused(self, bad):
        with pytest.raises(ts.TokenStoreError, match="history must be a whole number"):
            ts.make_request(["acme"], history=bad)


class TestAge:
    def test_age_in_whole_days(self):
        assert ts.age_days("2026-11-18T16:40:00Z", NOW) == 10
        assert ts.age_days("2026-11-28T16:39:59Z", NOW) == 0
        assert ts.age_days("not a time", NOW) is None

    def test_overdue_only_active_and_older(self):
        entries = {"acme": active("a" * 43, created="2025-11-01T00:00:00Z"),
                   "beta": active("b" * 43, created="2026-11-20T00:00:00Z"),
                   "": dict(active("c" * 43, created="2025-01-01T00:00:00Z"), state=ts.RETIRED)}
        assert ts.overdue(entries, ["acme", "beta", ""], 90, NOW) == {"acme": 392}

    def test_rotate_older_than_rotates_just_those(self):
        entries = {"acme": active("a" * 43, created="2025-11-01T00:00:00Z"),
                   "beta": active("b" * 43, created="2026-11-20T00:00:00Z")}
        out = run(entries, realms=["acme", "beta"], rotate_older_than_days=90)
        assert out.rotated == ["acme"] and out.previous_tokens == {"acme": "a" * 43}
        assert out.ages == {"acme": 0, "beta": 8}

    def test_a_fresh_token_is_not_rotated_again(self):
        entries: dict = {}
        out = run(entries, realms=["acme"], rotate_older_than_days=1)
        assert out.generated == ["acme"] and out.rotated == []

    @pytest.mark.parametrize("bad", [0, -3, "90", True])
    def test_a_bad_maximum_age_is_refused(self, bad):
        with pytest.raises(ts.TokenStoreError, match="maximum token age"):
            ts.make_request(["acme"], rotate_older_than_days=bad)
