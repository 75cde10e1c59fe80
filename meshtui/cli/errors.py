"""Errors the CLI itself raises (controller errors are controller.errors.MeshError)."""


class UsageError(Exception):
    """The command line asks for something that cannot be done as asked: exit 2, like argparse."""
