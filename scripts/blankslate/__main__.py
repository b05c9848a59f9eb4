from blankslate.cli import main

main()
