"""Live data: producers (watch, golden poll, tap) write into these bounded buffers; screens read
them on a fixed tick."""
