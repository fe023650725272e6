"""Integration tests: the session against SQLite, PostgreSQL and MariaDB."""
