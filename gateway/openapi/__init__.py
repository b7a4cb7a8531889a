"""The gateway's OpenAPI 3.1 document (``GET /openapi.json``) and its HTML listing (``/docs``).

``document.build_document()`` assembles the dict from ``schemas`` (components),
``paths_data`` (data plane) and ``paths_admin`` (admin API, repository extension,
monitoring); ``endpoints`` serves it, encoded once when the route table is built.
"""
