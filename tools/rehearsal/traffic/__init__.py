"""The clients: the load process, its client models and how a request ended."""
