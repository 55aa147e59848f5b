#!/usr/bin/env python3
"""An engine that reads the cluster live: the kubelet's own `Failed` events for the failing
pods, through kubectl and the read-only kubeconfig pullproof hands to engines
(PULLPROOF_KUBECONFIG: the scenario's namespace and the nodes). Like naive.py it guesses the
cause from the message text alone and proposes no fix.

pullproof runs it as:  pullproof run --engine-cmd 'python3 examples/engines/events.py'
kubectl is taken from PATH, else from the pinned build in ~/.cache/pullproof (PULLPROOF_CACHE).
"""
import glob
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from naive import GUESSES, report, workload_of  # noqa: E402


def kubectl():
    found = shutil.which("kubectl")
    if found:
        return found
    cache = os.environ.get("PULLPROOF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "pullproof")
    builds = sorted(glob.glob(os.path.join(cache, "kubernetes", "*", "bin", "kubectl")))
    if not builds:
        sys.exit("events.py: kubectl is not on PATH and no pinned build is cached (just kubernetes)")
    return builds[-1]


def get(kind, namespace):
    out = subprocess.run(
        [kubectl(), "--kubeconfig", os.environ["PULLPROOF_KUBECONFIG"], "-n", namespace, "get", kind, "-o", "json"],
        check=True, capture_output=True, text=True, timeout=30,
    )
    return json.loads(out.stdout).get("items", [])


def main():
    namespace = os.environ["PULLPROOF_NAMESPACE"]
    pods = {p["metadata"]["name"]: p for p in get("pods", namespace)}
    findings = {}
    for event in get("events", namespace):
        involved = event.get("involvedObject", {})
        if event.get("reason") != "Failed" or (event.get("source") or {}).get("component") != "kubelet":
            continue
        pod = pods.get(involved.get("name"))
        if pod is None:
            continue
        message = event.get("message", "")
        code = next((c for text, c in GUESSES if text in message), None)
        if code is None:
            continue
        finding = findings.setdefault(code, {
            "code": code, "severity": "error", "confidence": "low",
            "summary": f"guessed from the kubelet's event: {code}",
            "blamed": [workload_of(namespace, involved.get("name", ""))],
            "evidence": [], "pods": [], "plan": {"actions": []},
        })
        finding["evidence"].append(message[:300])
        container = (pod["spec"].get("containers") or [{}])[0]
        ref = {"namespace": namespace, "name": involved.get("name", ""),
               "container": container.get("name", ""), "image": container.get("image", "")}
        if ref not in finding["pods"]:
            finding["pods"].append(ref)
    return report("events.py", findings)


if __name__ == "__main__":
    sys.exit(main())
