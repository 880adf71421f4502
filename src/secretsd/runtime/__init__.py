"""Running Lambda functions: the Runtime API an environment talks to, and its sandboxed process."""
