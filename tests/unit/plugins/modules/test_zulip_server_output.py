"""What restart-server (the zulip user's program) prints cannot show the host's tokens or drive the operator's terminal.

The module runs as Ansible runs it (its own process, its result as JSON on stdout), so the result is what
Ansible's own masking of ``no_log_values`` leaves of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_server

# The folder that holds ansible_collections/, wherever the collection is (the checkout, ansible-test's copy).
COLLECTIONS_ROOT = Path(zulip_server.__file__).absolute().parents[5]
# ansible itself too, as this process finds it (ansible-test puts it on sys.path, not in the venv).
MODULE_PATH = os.pathsep.join([str(COLLECTIONS_ROOT)] + [entry for entry in sys.path if entry])
TOKEN = "zulip-owned-restart-prints-" + "T" * 32


@pytest.mark.reliability(area="attack", case="restart-server (the zulip user's) prints zulip-secrets.conf and "
                         "terminal escape sequences, then fails",
                         outcome="the result and message show every secret of the file masked and the escapes as '?'")
@pytest.mark.skipif(os.geteuid() != 0, reason="runs restart-server through runuser, which needs root")
def test_restart_server_output_shows_no_secret_and_no_escape(tmp_path):
    etc, scripts = tmp_path / "etc", tmp_path / "deploy" / "scripts"
    etc.mkdir()
    scripts.mkdir(parents=True)
    secrets = etc / "zulip-secrets.conf"
    secrets.write_text("[secrets]\nscim_bearer_token_acme = %s\nshort = 1\n" % TOKEN)
    (etc / "settings.py").write_text("X = 1\n")
    script = scripts / "restart-server"
    script.write_text("#!/bin/sh\ncat %s\nprintf '\\033[2J\\033[1;1HZulip restarted successfully!\\n'\nexit 1\n" % secrets)
    script.chmod(0o755)
    args = {"deploy_path": str(tmp_path / "deploy"), "settings_path": str(etc / "settings.py"),
            "secrets_path": str(secrets), "user": "root"}
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, "-m", "ansible_collections.zulip_ops.zulip.plugins.modules.zulip_server",
                           str(args_file)], env=dict(os.environ, PYTHONPATH=MODULE_PATH),
                          capture_output=True, text=True, timeout=120, check=False)
    assert TOKEN not in done.stdout + done.stderr
    assert done.stdout, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["failed"] and result["msg"].startswith("restart-server failed (rc=1): ")
    assert "scim_bearer_token_acme = ********" in result["stdout_lines"]
    assert "short = 1" in result["stdout_lines"]  # a short value is not a secret worth masking everywhere
    assert "\x1b" not in done.stdout and "?[2J?[1;1HZulip restarted successfully!" in result["stdout_lines"]
