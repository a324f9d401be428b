"""The studio's JSON API: one module per area, each with ``router = fastapi.APIRouter()`` (mounted under /api)."""
