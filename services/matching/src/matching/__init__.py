"""Delego matching service."""
