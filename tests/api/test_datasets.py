#!/usr/bin/env python3
"""Checks the real datasets in ../shared/data against their README counts and the
converters of tests/lib/itemvec_data.py (round trips of CSV/TSV/NDJSON/JSON).
Needs no daemon. Exit 0 pass, 1 fail, 77 skip (datasets absent outside CI)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import itemvec_data  # noqa: E402

if __name__ == "__main__":
    sys.exit(itemvec_data.main([sys.argv[0], "--self-test"]))
