"""Local servers speaking the cloud providers' real wire protocols, for tests and benches (127.0.0.1, port 0)."""
