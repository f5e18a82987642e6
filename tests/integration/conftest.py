import os

import pytest
import torch

# Nothing may be fetched from the Hugging Face Hub: the models here are built
# from configs. Set before any test module imports transformers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="module", autouse=True)
def float64_on_one_thread():
    """Every run in float64 with torch's own default dtype float64, so that
    torch.optim keeps its 0-d 'step' counters in float64 too, as a training
    script that calls ``torch.set_default_dtype(torch.float64)`` would. One
    thread: these models are so small that a second thread only waits on the
    first (a Trainer run takes several times longer with two on a busy machine)."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.set_default_dtype(dtype)
