#!/usr/bin/env python3
"""Adversarial engine: reports every cause code the report schema knows, on every world. It
"detects" every fault, so its recall is perfect; its precision must be far below 1 and the
healthy control must be a false positive.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from naive import report  # noqa: E402

SCHEMA = os.path.join(HERE, "..", "..", "..", "engine", "schema", "report.schema.json")


def codes():
    with open(SCHEMA) as f:
        schema = json.load(f)
    variants = schema["$defs"]["FindingCode"]["oneOf"]
    return sorted(v["const"] for v in variants if "const" in v and v["const"] != "EVIDENCE_UNAVAILABLE")


def main():
    findings = {c: {"code": c, "severity": "error", "confidence": "low", "summary": "everything, always",
                    "blamed": [], "evidence": [], "pods": [], "plan": {"actions": []}} for c in codes()}
    return report("everything.py", findings)


if __name__ == "__main__":
    sys.exit(main())
