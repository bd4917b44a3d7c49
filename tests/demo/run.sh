#!/usr/bin/env bash
# The newcomer demo: boots one throw-away Zulip stand-in host, runs
# playbooks/enable_scim.yml against it twice (the second run changes nothing),
# and shows an IdP-style SCIM request being accepted. Run as root:
#   bash tests/demo/run.sh            (DEMO_KEEP=1 keeps the host running)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
bash tests/setup.sh --demo

demo=.cache/demo
host=demo-1
py=.venv/bin/python
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_SSH_CONTROL_PATH_DIR=/run/zulip-testhost/cp
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_PIPELINING=True ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-}

# The demo's own ansible-playbook runs leave out what ansible-core's libraries say
# about each other: cryptography 51 warns about DSA when ansible-core's ssh-agent
# support imports it (a UserWarning subclass, raised at that module). The tools'
# versions are locked (tests/requirements.lock) to ones that do not warn; this
# keeps a newcomer's screen clean should one do. Only these runs get the filter:
# the collection's users, and its own warnings, are untouched.
tool_warnings=ignore::UserWarning:ansible._internal._ssh._ssh_agent
playbook() { PYTHONWARNINGS=${PYTHONWARNINGS:+$PYTHONWARNINGS,}$tool_warnings ansible-playbook "$@"; }

# Without DEMO_KEEP=1 the host goes, and so do its inventory, token file and vault password.
cleanup() { [ "${DEMO_KEEP:-0}" = 1 ] || { $py tests/testhost/testhost.py down "$host" >/dev/null; rm -rf "$demo"; }; }
trap cleanup EXIT

rm -rf "$demo" && mkdir -p "$demo/inventory" && chmod 700 "$demo"
echo "== Booting a Debian 12 test host with a Zulip 11.2 stand-in"
info=$($py tests/testhost/testhost.py up "$host")
address=$($py -c 'import json,sys; print(json.loads(sys.stdin.read())["address"])' <<<"$info")
key=$($py -c 'import json,sys; print(json.loads(sys.stdin.read())["identity_file"])' <<<"$info")
cat > "$demo/inventory/hosts.yml" <<YAML
zulip:
  hosts:
    zulip.demo:
      ansible_host: $address
      ansible_user: root
      ansible_ssh_private_key_file: $key
      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
      ansible_python_interpreter: /usr/bin/python3
      zulip_standin_flavour: "11.2"
      zulip_scim_realms:
        - subdomain: acme
          client_name: okta
        - subdomain: ""
          client_name: entra-id
          name_formatted_included: true
YAML
$py -c 'import secrets; print(secrets.token_urlsafe(24))' > "$demo/vault-pass" && chmod 600 "$demo/vault-pass"
playbook -i "$demo/inventory" tests/zulip_standin/install.yml >/dev/null

echo "== ansible-playbook playbooks/enable_scim.yml (first run: configures and restarts once)"
playbook -i "$demo/inventory" --vault-password-file "$demo/vault-pass" playbooks/enable_scim.yml
echo "== Second run: nothing to change, no restart"
playbook -i "$demo/inventory" --vault-password-file "$demo/vault-pass" playbooks/enable_scim.yml | tail -n 3

echo "== An IdP's request to the acme realm"
$py tests/testhost/testhost.py ssh "$host" -- python3 - acme < tests/demo/scim_request.py
echo
echo "== The IdP connection sheet the first run wrote ($demo/inventory/zulip-scim-sheet-zulip.demo.md, 0600):"
cat "$demo/inventory/zulip-scim-sheet-zulip.demo.md"
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  echo
  echo "== Kept the host $host (inventory $demo/inventory, vault password $demo/vault-pass)."
  echo "   Remove it with: $py tests/testhost/testhost.py down $host"
fi
