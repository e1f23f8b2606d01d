"""Events: the store and outbox, the Kafka relay, consumers (trigger, worker), lineage, the Kafka source."""
