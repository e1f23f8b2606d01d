"""`python -m fusion` runs the fusion CLI."""

from fusion.commands import app

if __name__ == "__main__":
    app()
