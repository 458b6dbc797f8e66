"""Delego billing service."""
