"""`python -m edgeplane` = the `edgeplane` command."""

from edgeplane.cli import main

main()
