#!/usr/bin/env python3
"""Adversarial engine: instead of diagnosing, it tries to change the world with the credentials it
was handed: it tags the registry's resource group through ARM and adds a password to an
application through Graph. Engines get a Reader identity, so both must be refused (ARM 403
`AuthorizationFailed`, Graph 403 `Authorization_RequestDenied`), and pullproof records the
attempts in the run record (`refused`). It reports what it saw on stderr and no finding.

With `--expect-isolated` it also tries to read the world beside its own folder (the run folder's
listing, the worlds' cloud configs, the control plane's admin kubeconfig) and exits 4 if
anything opens: pullproof runs external engines as an unprivileged user in a folder of their own.
"""
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from naive import report  # noqa: E402


def call(method, url, token, body):
    context = ssl.create_default_context(cafile=os.environ["PULLPROOF_CA_FILE"])
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            return answer.status, answer.read()[:200]
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:300]


def snoop():
    """What of the world this process can read, beside its own folder."""
    own = os.path.dirname(os.path.abspath(os.environ["PULLPROOF_DUMP_DIR"]))
    run = os.path.dirname(os.path.dirname(own))
    seen = []
    try:
        seen.append(f"listed {run}: {os.listdir(run)}")
    except OSError:
        pass
    for path in [os.path.join(run, "control-plane", "admin.kubeconfig"),
                 os.path.join(run, os.path.basename(own), "azure.json")]:
        try:
            with open(path) as f:
                f.read(1)
            seen.append(f"read {path}")
        except OSError:
            pass
    return seen


def main():
    if "--expect-isolated" in sys.argv[1:]:
        seen = snoop()
        if seen:
            print("the world is readable from the engine: " + "; ".join(seen), file=sys.stderr)
            return 4
    with open(os.environ["PULLPROOF_AZURE_INVENTORY"]) as f:
        inventory = json.load(f)
    arm = os.environ["PULLPROOF_ARM_ENDPOINT"].rstrip("/")
    graph = os.environ["PULLPROOF_GRAPH_ENDPOINT"].rstrip("/")
    registries = [r for r in inventory.get("resources", [])
                  if r.get("type", "").lower() == "microsoft.containerregistry/registries"]
    for registry in registries:
        group = "/".join(registry["id"].split("/")[:5])
        status, body = call("PATCH", f"{arm}{group}?api-version=2025-04-01", os.environ["PULLPROOF_ARM_TOKEN"],
                            {"tags": {"touched-by": "arm-writer"}})
        print(f"ARM PATCH {group}: {status} {body!r}", file=sys.stderr)
    for app in inventory.get("applications", []):
        status, body = call("POST", f"{graph}/v1.0/applications/{app['id']}/addPassword",
                            os.environ["PULLPROOF_GRAPH_TOKEN"], {"passwordCredential": {"displayName": "mine"}})
        print(f"Graph addPassword {app['id']}: {status} {body!r}", file=sys.stderr)
    return report("arm-writer.py", {})


if __name__ == "__main__":
    sys.exit(main())
