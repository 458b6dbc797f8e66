"""Delego notifications service."""
