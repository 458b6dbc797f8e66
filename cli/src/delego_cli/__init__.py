"""Delego operator CLI and local platform runner."""
