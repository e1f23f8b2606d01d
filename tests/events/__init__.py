"""Tests of fusion.events against a real Kafka-protocol broker (Tansu)."""
