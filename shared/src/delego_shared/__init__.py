"""Delego platform library: events, messaging, storage, logging, HTTP helpers."""
