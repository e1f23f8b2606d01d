"""The one `fusion` command line (typer). Not `fusion.cli`: Kedro imports `<package>.cli` for its own commands."""
