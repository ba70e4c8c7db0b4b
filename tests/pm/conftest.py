"""The preference-model (`train pm`), preference env and win_rate tests drive the
CLI in real processes with the helpers of the SL tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sl"))
