"""Stream multiplexing for the mTLS hop between proxies (yamux framing).

Between an outbound proxy and a remote gateway every HTTP/1.1 connection of the pool is a
stream of one long-lived TLS connection (a session) per gateway and client identity, agreed
by ALPN `meshtui-mux/1`. The frames written during one turn of the event loop go out as
one TLS record: a TLS record costs as much as a proxied request, so per-connection TLS
would cost a quarter of the cross-cluster throughput.

- frames.py: the frame format (HashiCorp's yamux spec) and a streaming reader (pure);
- stream.py: a stream as an asyncio transport, with yamux's per-stream flow control;
- session.py: one connection's streams and frames;
- connector.py: the client side's sessions, one per gateway and identity.
"""
MUX_ALPN = "meshtui-mux/1"
