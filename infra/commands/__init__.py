"""The work behind each `inferstack` command, one module per command."""
