"""Command-line stages: one module per workflow rule, each with ``main(argv)``."""
