"""Helpers the tests share, kept out of test modules and conftest files: project copies, the CLIs, a Kafka broker."""
