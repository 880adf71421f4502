"""The web console, served under /console/ on the API's port (ADR 0004 mounts)."""
