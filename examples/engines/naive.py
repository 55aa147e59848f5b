#!/usr/bin/env python3
"""A minimal engine for pullproof's contract: it reads the failing pods' waiting messages from
the cluster dump and guesses a cause from the message alone, with no Azure evidence and no fix.
It can only blame the failing workload.

pullproof runs it as:  pullproof run --engine-cmd 'python3 examples/engines/naive.py'
Inputs arrive in PULLPROOF_* environment variables; the report goes to stdout and follows
engine/schema/report.schema.json. It is deliberately naive: grade it to see what a
conformance report looks like when an engine confuses causes.
"""
import glob
import json
import os
import sys

GUESSES = [  # (text in the message, finding code)
    ("no match for platform", "PLATFORM_MISMATCH"),
    ("not found", "IMAGE_NOT_FOUND"),
    ("no such host", "LOGIN_SERVER_TYPO"),
    ("403 Forbidden", "ACR_FIREWALL_DENIES_EGRESS"),
    ("i/o timeout", "VNET_PEERING_MISSING"),
    ("401 Unauthorized", "ACR_PULL_ROLE_MISSING"),
]


def workload_of(namespace, pod_name):
    """The Deployment that owns a pod, from its name (`web-78859bdb5c-4x62f` -> `NS/web`): the
    one resource a message-only engine can blame."""
    return {"kind": "Deployment", "id": f"{namespace}/{pod_name.rsplit('-', 2)[0]}"}


def waiting_messages(dump_dir):
    for path in glob.glob(os.path.join(dump_dir, "*", "pods.json")):
        with open(path) as f:
            for pod in json.load(f).get("items", []):
                meta = pod.get("metadata", {})
                for status in pod.get("status", {}).get("containerStatuses", []) or []:
                    waiting = (status.get("state") or {}).get("waiting") or {}
                    if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                        yield meta, status, waiting.get("message", "")


def main():
    findings = {}
    for meta, status, message in waiting_messages(os.environ["PULLPROOF_DUMP_DIR"]):
        code = next((c for text, c in GUESSES if text in message), None)
        if code is None:
            continue
        finding = findings.setdefault(code, {
            "code": code, "severity": "error", "confidence": "low",
            "summary": f"guessed from the message text: {code}",
            "blamed": [workload_of(meta.get("namespace", ""), meta.get("name", ""))],
            "evidence": [], "pods": [], "plan": {"actions": []},
        })
        finding["evidence"].append(message[:300])
        finding["pods"].append({"namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
                                "container": status.get("name", ""), "image": status.get("image", "")})
    return report("naive.py", findings)


def report(engine, findings):
    """Prints the report (engine/schema/report.schema.json) and returns the exit code."""
    json.dump({
        "schemaVersion": "1",
        "engine": {"name": engine, "version": "0"},
        "status": "findings" if findings else "healthy",
        "failing": [],
        "findings": list(findings.values()),
    }, sys.stdout)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
