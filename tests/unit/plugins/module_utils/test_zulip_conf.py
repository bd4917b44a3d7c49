# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for plugins/module_utils/_zulip_conf.py, on real files under tmp_path."""

from __future__ import annotations

import pytest

from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip_conf import (
    FrontEnd,
    api_url_of,
    read_front_end,
)

HEAD = "[machine]\ndeploy_type = production\n\n"


def conf(tmp_path, body: str):
    path = tmp_path / "zulip.conf"
    path.write_text(HEAD + body, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("word", ["true", "True", "TRUE", "1", "yes", "Yes", "y", "t", "enable", "enabled", " true "])
def test_http_only_true_words(tmp_path, word):
    path = conf(tmp_path, "[application_server]\nhttp_only = %s\n" % word)
    assert read_front_end(path).http_only is True
    assert api_url_of(None, path) == "http://127.0.0.1"


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "off", "", "maybe"])
def test_http_only_other_words_are_false(tmp_path, word):
    path = conf(tmp_path, "[application_server]\nhttp_only = %s\n" % word)
    assert read_front_end(path).http_only is False
    assert api_url_of(None, path) == "https://127.0.0.1"


@pytest.mark.parametrize("body, url", [
    ("http_only = true\nnginx_listen_port = 9991\n", "http://127.0.0.1:9991"),
    ("http_only = true\nnginx_listen_port = 80\n", "http://127.0.0.1"),
    ("http_only = true\nnginx_listen_port = 443\n", "http://127.0.0.1:443"),
    ("nginx_listen_port = 443\n", "https://127.0.0.1"),
    ("nginx_listen_port = 8443\n", "https://127.0.0.1:8443"),
    ("http_only = false\nnginx_listen_port = 80\n", "https://127.0.0.1:80"),
    ("queue_workers_multiprocess = false\n", "https://127.0.0.1"),
])
def test_port_given_or_not(tmp_path, body, url):
    assert api_url_of("", conf(tmp_path, "[application_server]\n" + body)) == url


def test_missing_file_is_the_default(tmp_path):
    assert api_url_of(None, str(tmp_path / "absent.conf")) == "https://127.0.0.1"


def test_file_without_the_section_is_the_default(tmp_path):
    assert api_url_of(None, conf(tmp_path, "[postgresql]\nversion = 15\n")) == "https://127.0.0.1"


def test_an_explicit_url_always_wins(tmp_path):
    path = conf(tmp_path, "[application_server]\nhttp_only = true\nnginx_listen_port = 9991\n")
    assert api_url_of("https://zulip.internal:8443", path) == "https://zulip.internal:8443"


@pytest.mark.parametrize("port", ["ninety", "0", "65536", "-1", "80.5"])
def test_a_bad_port_fails_naming_file_and_key(tmp_path, port):
    path = conf(tmp_path, "[application_server]\nnginx_listen_port = %s\n" % port)
    with pytest.raises(ZulipError) as exc:
        read_front_end(path)
    assert str(exc.value) == "%s: [application_server] nginx_listen_port = %s is not a port number" % (path, port)


def test_a_file_that_is_not_ini_fails_naming_it(tmp_path):
    path = tmp_path / "zulip.conf"
    path.write_text("http_only = true\n")
    with pytest.raises(ZulipError, match="^cannot read %s: " % path):
        read_front_end(str(path))


def test_an_unreadable_path_fails_naming_it(tmp_path):
    with pytest.raises(ZulipError, match="^cannot read %s: " % tmp_path):
        read_front_end(str(tmp_path))  # a directory


def test_front_end_defaults():
    assert FrontEnd().url == "https://127.0.0.1"
    assert FrontEnd(True).url == "http://127.0.0.1"
