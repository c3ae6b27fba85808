import os
import sys

# Make `tests.oracle` importable as `oracle` regardless of how pytest is invoked.
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("NO_COLOR", "1")
