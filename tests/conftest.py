"""Shared fixtures: small datasets built once per session, single-threaded torch for bit-reproducibility."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from chaosgrid.data import digits

    return digits()


@pytest.fixture(scope="session")
def digits_sets(digits):
    from chaosgrid.grid import eval_pairs
    from chaosgrid.shifts import eval_sets

    return eval_sets(digits, eval_pairs(["gaussian_noise", "contrast"], [2]))
