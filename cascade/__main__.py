"""``python -m cascade`` runs the command line."""

from cascade.cli import main

main()
