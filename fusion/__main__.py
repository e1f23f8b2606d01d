"""`python -m fusion` runs the fusion CLI."""

from fusion.commands.app import app

if __name__ == "__main__":
    app()
