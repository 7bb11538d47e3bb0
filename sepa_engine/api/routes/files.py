"""Batches (the files written for the bank) and the published files themselves: read only."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, Response

from sepa_engine import errors
from sepa_engine.api import docs
from sepa_engine.api.deps import ID_MAX, Context, Paging, ReadScope, page
from sepa_engine.api.routes.common import read
from sepa_engine.domain.statuses import BatchStatus
from sepa_engine.services import api_views

router = APIRouter(prefix="/v1/creditors/{creditor}", tags=["batches and files"])
BatchId = Annotated[int, Path(ge=1, le=ID_MAX, description="The batch's id.")]


@router.get("/batches", responses=docs.problems())
def list_batches(
    ctx: Context, scope: ReadScope, paging: Paging,
    status: Annotated[BatchStatus | None, Query(description="Only batches in this status.")] = None,
) -> Response:
    """The creditor's batches by id: message id, status, counts and sums, file name and sha256."""
    return read(ctx, lambda session: page(api_views.list_batches(
        session, scope.creditor, after_id=paging.after_id, limit=paging.limit, status=status.value if status else None), paging))


@router.get("/batches/{batch_id}", responses=docs.problems())
def get_batch(ctx: Context, scope: ReadScope, batch_id: BatchId) -> Response:
    """One batch with its payment blocks."""
    return read(ctx, lambda session: api_views.get_batch(session, scope.creditor, batch_id))


@router.get(
    "/batches/{batch_id}/file",
    responses={**docs.problems(), 200: {"description": "The published pain.008 file.", "content": {"application/xml": {}}}},
    response_class=FileResponse,
)
def get_file(ctx: Context, scope: ReadScope, batch_id: BatchId) -> Any:
    """The published pain.008 file of a batch, byte for byte (its sha256 is in the batch)."""
    with ctx.db.reader() as session:
        path, sha256 = api_views.batch_file(session, scope.creditor, batch_id)
    if not FilePath(path).is_file():
        raise errors.NotFound("file", batch_id, "is no longer in the outbox")
    return FileResponse(path, media_type="application/xml", headers={"X-Content-SHA256": sha256 or ""})
