"""Tests of `fusion bench`."""
