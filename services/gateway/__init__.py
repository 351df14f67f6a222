"""HTTP gateway: REST, SSE and ZIP downloads from the protos' google.api.http rules."""
