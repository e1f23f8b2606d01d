"""Tests of fusion.model: the network, the one series-probability rule, the training loop."""
