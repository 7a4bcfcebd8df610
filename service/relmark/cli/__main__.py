"""``python -m relmark.cli``: the same commands as the ``relmark`` script."""

from relmark.cli import main

main()
