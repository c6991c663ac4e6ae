"""Argus-compatible incident API under ``/api/v2/`` (docs/argus.md).

Existing Argus glue services (``argus-api-client``) point at Tocsin and work
unchanged: source-system tokens (``Authorization: Token …``), incidents with
``key=value`` tags, events, acknowledgements, cursor pages.  See
``docs/argus.md`` for what is compatible and what is not.
"""
