"""HTTP API and web page over the same Library the CLI uses."""
