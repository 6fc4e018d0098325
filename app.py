"""Placeholder until the app issue lands."""
