"""HTTP/2 (and gRPC) engine of the data plane, on ngh2 (libnghttp2): connections in both
roles, multiplexed upstream pools, the per-stream relay and its routing decisions."""
