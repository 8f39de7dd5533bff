"""The alibi-detect adapter without alibi-detect: a clear error, and nothing else needs it.

alibi-detect is an optional extra that never sits in the main environment (it pins numpy < 2);
tests/peers/test_alibi_adapter.py checks the adapter against it in the peers environment.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from detectors.drift.alibi import load_alibi, wrap_alibi
from detectors.exceptions import DataError


@pytest.fixture
def saved_ks(tmp_path):
    """A directory as alibi-detect's save_detector leaves it, as far as the adapter reads."""
    (tmp_path / "config.toml").write_text('name = "KSDrift"\nx_ref = "x_ref.npy"\n')
    return tmp_path


def test_loading_without_alibi_detect_says_how_to_install_it(saved_ks, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "alibi_detect", None)  # absent, wherever this runs
    with pytest.raises(ImportError, match=r"pip install 'robustwatch\[alibi\]'.*numpy<2"):
        load_alibi(saved_ks)


def test_importing_the_drift_detectors_never_imports_alibi_detect() -> None:
    code = (
        "import sys, detectors.drift, detectors.drift.alibi; "
        "sys.exit('alibi_detect' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_directories_and_kinds_it_refuses_before_loading(tmp_path) -> None:
    with pytest.raises(DataError, match=r"holds no config\.toml.*legacy \.dill"):
        load_alibi(tmp_path)
    (tmp_path / "config.toml").write_text('name = "ClassifierDrift"\n')
    with pytest.raises(DataError, match=r"ClassifierDrift, which .* supported: KSDrift, "):
        load_alibi(tmp_path)
    (tmp_path / "config.toml").write_text("name = \n")
    with pytest.raises(DataError, match="is not an alibi-detect detector config"):
        load_alibi(tmp_path)
    with pytest.raises(DataError, match="alibi-detect's object"):
        wrap_alibi(object())
