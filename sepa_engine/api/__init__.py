"""The HTTP API (FastAPI): app.py builds it, routes/ hold the endpoints, deps.py what every route needs."""
