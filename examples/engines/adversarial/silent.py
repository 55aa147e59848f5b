#!/usr/bin/env python3
"""Adversarial engine: always says the world is healthy. It is right only on the healthy control;
on every broken world it has missed the cause, and its recall is 0.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from naive import report  # noqa: E402

if __name__ == "__main__":
    sys.exit(report("silent.py", {}))
