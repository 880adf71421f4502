"""Helpers for tests that run real processes: a throw-away PostgreSQL and `secretsd serve`."""
