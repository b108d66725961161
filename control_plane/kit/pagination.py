"""Offset pagination for every list endpoint."""

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
MAX_OFFSET = 2**31 - 1


class PageParams(BaseModel):
    limit: int = 50
    offset: int = 0


def page_params(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    # Bounded so every database takes it (a 64-bit column offset; SQLite's INTEGER).
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, rows: Sequence[Any], total: int, paging: PageParams) -> "Page[T]":
        """Build the page; the response model validates each row from its attributes."""
        return cls.model_validate(
            {"items": list(rows), "total": total, "limit": paging.limit, "offset": paging.offset},
            from_attributes=True,
        )


async def paginate(
    session: AsyncSession, query: Select[Any], paging: PageParams
) -> tuple[list[Any], int]:
    """One page of ``query`` (already filtered and ordered) and the total it matches."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = await session.scalars(query.limit(paging.limit).offset(paging.offset))
    return list(rows), total or 0
