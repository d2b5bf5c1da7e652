"""Shared by every test package: tests/ on the import path for :mod:`fake_predictor`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
