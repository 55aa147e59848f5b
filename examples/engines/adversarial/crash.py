#!/usr/bin/env python3
"""Adversarial engine: fails the way real engines fail. `crash.py` exits 3 with a traceback;
`crash.py hang` never answers (pullproof's engine timeout must stop it, and its whole process
group). Either way the verdict is `engine_failed`: every expected code missed.
"""
import sys
import time

if __name__ == "__main__":
    if sys.argv[1:] == ["hang"]:
        time.sleep(3600)
    raise SystemExit(3)
