"""Video tests run the CLI in-process; it sets torch's thread count, which must not leak into other tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The CLI sets torch's thread count for its process; do not leak that into other tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
