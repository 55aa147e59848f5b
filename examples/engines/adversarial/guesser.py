#!/usr/bin/env python3
"""Adversarial engine: guesses the cause from the kubelet's message alone, blames the failing
workload (its Deployment, from the pod's name), and proposes a fix in prose ("look into it"),
with no typed change. pullproof must never count such a proposal as a remediation: on
`remediation: proposed` scenarios it gets `wrong`, never `verified` or `matches-inverse`; where the
fault is in Azure (a route) blaming the workload is `detected_wrong_resource`.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from naive import report, waiting_messages  # noqa: E402

GUESSES = [  # the catalog's likeliest code for each phrase
    ("no match for platform", "PLATFORM_MISMATCH"),
    ("not found", "IMAGE_NOT_FOUND"),
    ("no such host", "LOGIN_SERVER_TYPO"),
    ("403 Forbidden", "PRIVATE_DNS_ZONE_NOT_LINKED"),
    ("i/o timeout", "ROUTE_BLACKHOLE"),
    ("401 Unauthorized", "ACR_PULL_ROLE_MISSING"),
]


def main():
    findings = {}
    for meta, status, message in waiting_messages(os.environ["PULLPROOF_DUMP_DIR"]):
        code = next((c for text, c in GUESSES if text in message), None)
        if code:
            # web-78859bdb5c-4x62f -> web: the Deployment that owns the pod's ReplicaSet.
            deployment = meta.get("name", "").rsplit("-", 2)[0]
            workload = f"{meta.get('namespace', '')}/{deployment}"
            findings.setdefault(code, {
                "code": code, "severity": "error", "confidence": "high",
                "summary": f"the message says so: {code}",
                "blamed": [{"kind": "Deployment", "id": workload}], "evidence": [message[:200]],
                "pods": [], "plan": {"actions": [
                    {"action": "manual", "description": "look into it", "commands": []}]},
            })
    return report("guesser.py", findings)


if __name__ == "__main__":
    sys.exit(main())
