"""The event bus: the outbox relay to Kafka, event-driven runs, the streaming inference worker, the lineage read model."""
