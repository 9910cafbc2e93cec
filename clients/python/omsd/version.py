"""The package version, and the client name sent in Hello (shows up in the server's log)."""

__version__ = "0.1.0"
CLIENT_NAME = f"omsd-python/{__version__}"
