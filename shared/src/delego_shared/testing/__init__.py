"""Test support: real Kafka + Mongo-wire fixtures (pytest plugin) and record readers."""
