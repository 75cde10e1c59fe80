"""The `meshtui` command line: see `meshtui.cli.main` and `meshtui.cli.commands`."""
