"""``python -m compsec`` runs the CLI."""

from compsec.cli.main import main

main()
