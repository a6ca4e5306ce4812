"""The hub's store: SQLAlchemy models, sessions and Alembic migrations (SQLite or PostgreSQL)."""
