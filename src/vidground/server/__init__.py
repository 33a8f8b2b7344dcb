"""HTTP API, job queue and web page."""
