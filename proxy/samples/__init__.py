"""Sample apps the embedded federation runs as Workloads."""
