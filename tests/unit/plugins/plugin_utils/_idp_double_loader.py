"""Loads the IdP test doubles (tests/idp_doubles) and _tls_fixtures by path, and the set-up the backend tests share; not a test file."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

TESTS = Path(__file__).resolve().parents[3]
DOUBLES = TESTS / "idp_doubles"


def tls_fixtures():
    name = "_tls_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / "unit" / "plugins" / "modules" / "_tls_fixtures.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _need_doubles() -> None:
    """ansible-test copies tests/unit but not tests/idp_doubles: skip there."""
    if not DOUBLES.is_dir():
        pytest.skip("no tests/idp_doubles here", allow_module_level=True)


def double(name: str):
    """tests/idp_doubles/<name>.py, loaded by path as ``idp_double_<name>``: okta.py must not shadow the
    vendor's ``okta`` package it imports. Its helper siblings (json_double, strict_models) are importable by name."""
    _need_doubles()
    if str(DOUBLES) not in sys.path:
        sys.path.append(str(DOUBLES))
    module_name = "idp_double_%s" % name
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, DOUBLES / ("%s.py" % name))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def helper(name: str):
    """A helper module of the doubles (json_double, strict_models), the same module object the doubles use."""
    _need_doubles()
    if str(DOUBLES) not in sys.path:
        sys.path.append(str(DOUBLES))
    return importlib.import_module(name)


def vendor_models(package: str):
    """Make ``<package>.models.<name>`` importable without running the package's ``__init__``, or skip.

    authentik-client's ``__init__`` imports every API and model class (seconds of CPU per test
    process); the doubles need a handful of models, whose files import only their siblings. The
    package is registered as a bare package with its real ``__path__`` (nothing else of it is used).
    """
    if package in sys.modules:
        return
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("%s (the vendor's models) is not installed" % package, allow_module_level=True)
    for name, locations in ((package, list(spec.submodule_search_locations)),
                            (package + ".models", [str(Path(spec.submodule_search_locations[0]) / "models")])):
        module = types.ModuleType(name)
        module.__path__ = locations
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        module.__spec__.submodule_search_locations = locations
        sys.modules[name] = module


class BackendKit(NamedTuple):
    """What a backend's tests work with: the TLS fixtures, the backend's double and the doubles' helpers."""

    tlsfix: types.ModuleType
    doubles: types.ModuleType
    json_double: types.ModuleType
    strict: types.ModuleType


def backend_kit(name: str, vendor_package: str) -> BackendKit:
    """The double tests/idp_doubles/<name>.py with what it needs, or a skip: the vendor's models (``vendor_package``)
    and cryptography (it makes the test certificates)."""
    vendor_models(vendor_package)
    pytest.importorskip("cryptography", reason="cryptography makes the test certificates")
    return BackendKit(tls_fixtures(), double(name), helper("json_double"), helper("strict_models"))


def ca_fixture(name: str):
    """A module-scoped fixture ``ca``: a test CA (``_tls_fixtures.TestCA``) in a temporary folder ``<name>-ca``."""

    @pytest.fixture(scope="module", name="ca")
    def _ca(tmp_path_factory):
        return tls_fixtures().TestCA(tmp_path_factory.mktemp("%s-ca" % name))

    return _ca


def refusal_check(secrets: Iterable[str]) -> Callable[..., str]:
    """``refusal(call, *args)``: ``call(*args)`` must raise IdpError, whose message holds none of ``secrets``; it is returned."""
    from ansible_collections.zulip_ops.zulip.plugins.plugin_utils._idp_api import IdpError

    kept = tuple(secrets)

    def refusal(call: Callable[..., Any], *args: Any) -> str:
        with pytest.raises(IdpError) as caught:
            call(*args)
        message = str(caught.value)
        assert not any(secret in message for secret in kept), message
        return message

    return refusal
