"""Project-wide pytest set-up: keep torch to the machine's cores and make runs repeatable."""

import torch

torch.manual_seed(0)
