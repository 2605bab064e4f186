"""Shared test set-up: tests import their helpers from this folder, and find the pre-placed
corpora through RNNEXP_DATA_DIR when ../shared/corpora exists (no network here)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

_shared = ROOT.parent / "shared" / "corpora"
if "RNNEXP_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["RNNEXP_DATA_DIR"] = str(_shared)
