from blankslate.cli import run

run()
