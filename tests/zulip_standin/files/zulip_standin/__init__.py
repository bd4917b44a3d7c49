"""A test double of a Zulip server, for SCIM automation tests.

It is installed onto throw-away Debian hosts by ``tests/zulip_standin/install.yml``
and imitates what a real Zulip does around SCIM (manage.py, restart-server,
/etc/zulip/settings.py, the SCIM HTTP API), version by version. Every
version-dependent rule lives in :mod:`zulip_standin.versions`.
"""
