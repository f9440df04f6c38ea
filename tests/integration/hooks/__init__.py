"""The hooks against the stub HTTP server on 127.0.0.1, and against the sandbox."""
