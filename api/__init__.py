"""The personkort read API (FastAPI, versioned under /api/v1)."""
