"""Fixtures for the detector tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run each detector test on one torch thread, then restore the setting.

    The tests use small tensors, for which intra-op threads only add synchronisation; on a
    shared 2-core machine, spinning threads slow them down up to tenfold.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
