"""`python -m labeltool` runs the same command as the `labeltool` console script."""

from labeltool.cli import main

main()
