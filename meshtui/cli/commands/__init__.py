"""The CLI's subcommands, one module each.

To add a command (say `stat`):
1. write `meshtui/cli/commands/stat.py` with
       NAME = "stat"                      # the word typed after `meshtui`
       HELP = "golden metrics per service per cluster"
       def add_arguments(parser: argparse.ArgumentParser) -> None: ...   # its own options only
       async def run(args: argparse.Namespace) -> int: ...               # the exit code
   Talk to the control plane with `async with open_controller(args) as controller:`
   (meshtui.cli.connect); print through meshtui.cli.output; raise controller.errors.MeshError
   (one line on stderr, exit 1) or meshtui.cli.errors.UsageError (exit 2). `--state`,
   `--controller`, `--token` and `--cacert` are added for you, before or after the command name.
2. add "stat" to COMMANDS below (the order is the order in `meshtui --help`).
"""

COMMANDS: tuple[str, ...] = ("apply", "get", "delete", "check", "link", "unlink", "identity", "stat", "tap", "curl", "load", "demo",
                            "controller", "install", "inject", "attach", "serve_ssh")
