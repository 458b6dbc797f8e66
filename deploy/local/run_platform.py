"""Entry point of `make run` (see cli/src/delego_cli/run.py)."""

from delego_cli.run import main

if __name__ == "__main__":
    main()
