"""Tests of fusion.tracking: the shared run, the hooks in every order, the export bundle they write."""
