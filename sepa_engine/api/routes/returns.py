"""Return exceptions: bank records reconciliation could not match, as far as they concern
the creditor (their end-to-end id is one of its debits). Exceptions that name no debit of
any creditor are for operators (``sepa-engine returns exceptions``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from sepa_engine.api import docs
from sepa_engine.api.deps import ID_MAX, Body, Context, IdempotencyKey, Paging, ReadScope, WriteScope, page
from sepa_engine.api.routes.common import parsed, read, write
from sepa_engine.services import api_views

router = APIRouter(prefix="/v1/creditors/{creditor}", tags=["return exceptions"])
ExceptionId = Annotated[int, Path(ge=1, le=ID_MAX, description="The exception's id.")]


class ExceptionFilter(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


@router.get("/return-exceptions", responses=docs.problems())
def list_exceptions(
    ctx: Context, scope: ReadScope, paging: Paging,
    status: Annotated[ExceptionFilter, Query(description="open (default), resolved or all.")] = ExceptionFilter.OPEN,
) -> Response:
    """The creditor's return exceptions by id."""
    chosen = None if status is ExceptionFilter.ALL else status.value
    return read(ctx, lambda session: page(api_views.list_exceptions(
        session, scope.creditor, status=chosen, after_id=paging.after_id, limit=paging.limit), paging))


@router.post(
    "/return-exceptions/{exception_id}/resolution", openapi_extra=docs.body("ExceptionResolution"),
    responses=docs.write_problems(),
)
def resolve_exception(
    request: Request, ctx: Context, scope: WriteScope, key: IdempotencyKey, exception_id: ExceptionId, raw: Body
) -> Response:
    """Resolve an exception: ignored, or matched to a debit request of the creditor (the record is then applied)."""
    record = parsed(raw, "ExceptionResolution")

    def action(session: Any) -> tuple[int, Any]:
        return 200, api_views.resolve_exception(
            session, scope.creditor, exception_id, resolution=record["resolution"], note=record.get("note"),
            actor=scope.actor, clock=ctx.clock,
        )

    return write(ctx, request, scope, key, raw, action)
