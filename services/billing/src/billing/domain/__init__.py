"""Billing domain core: pure rules, no I/O (no Kafka, no Mongo, no HTTP).

The edges (handlers, store) feed it events and stored state, and persist or
publish what it returns. Every amount is a `Decimal` inside a shared `Money`;
rounding is half-up to the currency's minor unit, once per invoice line, and
totals are exact sums of the rounded lines.
"""
