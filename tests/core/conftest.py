"""Fixtures shared by the colour-maths and official-network tests."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run each module on one torch thread: tiny tensors on a shared 2-core machine are far faster so."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
