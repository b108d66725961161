"""FastAPI dependencies shared by the slices."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.kit.db import session_scope


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with session_scope(request.app.state.sessions) as session:
        yield session


# scope="function": the session commits when the route returns, before the response goes
# out, so a client that got 201 can rely on the next request seeing the row.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
