"""Kernel tests run on CPU through Triton's interpreter when there is no GPU.

The variable must be set before any module defines a Triton kernel, so it is set here, when pytest
collects this folder, and only where no CUDA device exists (a GPU machine runs the compiled kernels).
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
