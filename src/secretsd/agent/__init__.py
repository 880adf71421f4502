"""A local listener compatible with the AWS Secrets Manager Agent's HTTP API (docs/operations.md)."""
