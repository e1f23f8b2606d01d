"""`python -m fusion` runs the fusion CLI."""

from fusion.cli import app

if __name__ == "__main__":
    app()
