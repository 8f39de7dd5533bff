"""`robustwatch demo`, the product on its embedded defaults, end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_detects_and_stops_cleanly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "agent", "demo", "--duration", "30", "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("traffic ")]
    assert lines, done.stdout
    last = lines[-1]
    processed = float(last.split("processed")[1].split("(")[0])
    assert processed > 1000, last
    assert "query-attack suspects" in last and "adversarial:squeeze" in last
    assert "stopped after" in done.stdout
