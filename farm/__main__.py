"""``python -m farm``: the ``farm`` command, for environments where its script is not on PATH."""

from farm.cli import app

app(prog_name="farm")
