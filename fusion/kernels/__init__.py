"""Triton GPU kernels: each module holds `_<op>_kernel`, its host launcher and a readable torch reference."""
