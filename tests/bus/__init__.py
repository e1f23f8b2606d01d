"""Tests of fusion.bus against a real Kafka-protocol broker (Tansu)."""
