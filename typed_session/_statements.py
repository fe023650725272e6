"""``execute`` / ``scalars`` / ``scalar``: the typed statement API the session offers.

Each is a stack of overloads that type the result from the statement (``select(User)``
gives ``User`` objects, DML gives a ``CursorResult``); they all end in one method the
session implements, ``_run``, which autoflushes and runs the statement through
``loading``. Kept apart so that the session module holds behaviour, not signatures.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from sqlalchemy.engine import CursorResult, Result, ScalarResult
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import TypedReturnsRows
from typing_extensions import TypeVarTuple

from typed_session._loading import ExecutionOptions, Params

__all__ = ["StatementMethods"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


class StatementMethods:
    """What the session offers to run Core statements; see the module docstring."""

    __slots__ = ()

    def _run(
        self, statement: Executable, params: Params, execution_options: ExecutionOptions
    ) -> Result[*tuple[Any, ...]]:
        """Run a statement in the session's transaction, entities through the identity map."""
        raise NotImplementedError  # the session implements it

    @overload
    def execute(
        self,
        statement: TypedReturnsRows[*_Ts],
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*_Ts]: ...

    @overload
    def execute(
        self,
        statement: UpdateBase,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> CursorResult[*tuple[Any, ...]]: ...

    @overload
    def execute(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*tuple[Any, ...]]: ...

    def execute(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*tuple[Any, ...]]:
        """Run a Core statement in the session's transaction, after an autoflush.

        Entities selected (``select(User)``) come back as objects, through the identity
        map; everything else is Core's own result.
        """
        return self._run(statement, params, execution_options)

    @overload
    def scalars(
        self,
        statement: TypedReturnsRows[_T],
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[_T]: ...

    @overload
    def scalars(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[Any]: ...

    def scalars(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[Any]:
        """Run a statement and yield the first column of each row (``select(User)``: users)."""
        return self.execute(statement, params, execution_options=execution_options).scalars()

    @overload
    def scalar(
        self,
        statement: TypedReturnsRows[_T],
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> _T | None: ...

    @overload
    def scalar(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Any: ...

    def scalar(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Any:
        """Run a statement and return the first column of its first row, or ``None``."""
        return self.execute(statement, params, execution_options=execution_options).scalar()
