"""Test doubles of external services (never part of the product package or image)."""
