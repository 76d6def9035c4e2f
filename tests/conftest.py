"""Shared fixtures: small datasets built once per session, single-threaded torch for bit-reproducibility
(CHAOSGRID_TEST_THREADS=2 runs the suite on 2 threads, to check that no comparison depends on it)."""

import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("CHAOSGRID_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def digits():
    from chaosgrid.data import digits

    return digits()


@pytest.fixture(scope="session")
def digits_sets(digits):
    from chaosgrid.evalsets import eval_pairs
    from chaosgrid.shifts import eval_sets

    return eval_sets(digits, eval_pairs(["gaussian_noise", "contrast"], [2]))


@pytest.fixture(scope="session")
def digits64(digits):
    """digits in float64. Tests that compare two ways of computing the same run (K runs together vs each
    alone, one engine vs another) use it: float32 rounding depends on which kernels the CPU picks (oneDNN's
    AVX-512 convolutions round unlike its AVX2 ones), and a few steps amplify it past any fixed tolerance."""
    return digits.to(dtype=torch.float64)


@pytest.fixture(scope="session")
def digits64_sets(digits_sets):
    return {key: (x.double(), y) for key, (x, y) in digits_sets.items()}
