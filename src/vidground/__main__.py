"""``python -m vidground`` is the ``vidground`` command."""

from .cli import main

main()
