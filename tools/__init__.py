"""The repository's own tooling, behind one command line: `zdt` (tools/cli.py)."""
