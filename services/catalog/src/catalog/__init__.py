"""Delego catalog service."""
