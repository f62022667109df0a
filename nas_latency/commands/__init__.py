"""One module per CLI command family; each exposes ``register(subparsers)`` and handlers returning an exit code."""
