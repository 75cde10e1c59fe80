"""`meshtui demo`: scenarios (YAML under scenarios/), the clients that send traffic from inside a
cluster (curl, load, the demo's generated traffic) and the demo's composition."""
