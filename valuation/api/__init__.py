"""The partner REST API, versioned under /api/v1/ (Django REST Framework, schema by drf-spectacular)."""
