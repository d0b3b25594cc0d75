"""Tank's SQL registry: image metadata in SQLite (embedded) or PostgreSQL."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tank_registry_sql.registry import SqlRegistry

__all__ = ["SqlRegistry"]


def __getattr__(name: str) -> Any:  # lazy: importing the package must not load SQLAlchemy
    if name == "SqlRegistry":
        from tank_registry_sql.registry import SqlRegistry

        return SqlRegistry
    raise AttributeError(name)
