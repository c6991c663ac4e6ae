"""Source formats: pure decoders from a request body to normalised check events.

They live in ``shared/`` because ingest (the worker), the API (the source routes and the
ack endpoint), the CLI (``tocsin send``) and the dry run all decode the same bodies; see
docs/sources.md for the formats themselves.
"""
