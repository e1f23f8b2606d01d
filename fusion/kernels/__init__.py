"""Triton GPU kernels: each module holds `_<op>_kernel` and its host launcher; it imports `fusion.features.spec` only,
and its tests compare it to the one float64 reference, `fusion.features.reference`."""
