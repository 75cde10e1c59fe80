"""`meshtui serve-ssh`: the TUI over SSH, one Textual app per session in this process, all on one
controller. server (listener, authentication, rate limit) -> session (one channel's life) ->
app + driver (the TUI on that channel's terminal). Importing this package loads nothing heavy;
Textual and asyncssh come with meshtui.ssh.server."""
