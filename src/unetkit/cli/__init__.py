"""Command-line interface: one small module per command; logic lives in the library."""
