"""Tests of the `fusion` command line (fusion/commands/)."""
