"""Features: the spec and statistic registry, window moments, the one float64 reference, backends, the table.

Import from the modules (`from fusion.features.spec import FeatureSpec`): this file imports nothing, so
importing the spec loads neither torch, JAX, Triton nor pandas.
"""
