#!/usr/bin/env python3
"""Adversarial engine: guesses the cause from the kubelet's message alone and proposes a fix in
prose ("look into it"), with no typed change. pullproof must never count such a proposal as a
remediation: its grade on `remediation: proposed` scenarios is `wrong`, never `verified` or
`matches-inverse`.
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
            findings.setdefault(code, {
                "code": code, "severity": "error", "confidence": "high",
                "summary": f"the message says so: {code}", "blamed": [], "evidence": [message[:200]],
                "pods": [], "plan": {"actions": [
                    {"action": "manual", "description": "look into it", "commands": []}]},
            })
    return report("guesser.py", findings)


if __name__ == "__main__":
    sys.exit(main())
