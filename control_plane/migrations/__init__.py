"""Alembic migrations: the only way the schema is made, on PostgreSQL and SQLite alike."""
