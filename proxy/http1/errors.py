"""Errors an HTTP/1.1 connection hands to those reading or writing it. Here, not in
server.py, because mypyc compiles that module and cannot compile a subclass of
ConnectionError (proxy/compiled.py)."""


class ClientGone(ConnectionError):
    """The client closed its connection before the request body was complete."""
