"""Opaque TCP in the data plane: byte pipes, the outbound L4 listeners of `tcp` routes, the
gateway's MESHTUI-TCP side (also the tunnels of upgraded WebSocket connections)."""
