"""``python -m plotsm``: the command line, as the ``plotsm`` script."""

from plotsm.cli import main

if __name__ == "__main__":
    main()
