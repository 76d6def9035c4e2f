"""`python -m chaosgrid.cli`, as the `chaosgrid` command."""

from chaosgrid.cli import entry

entry()
