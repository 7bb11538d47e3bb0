"""Routers by resource; every route under ``/v1/creditors/{creditor}`` is scoped to a
creditor of the caller's token (``deps.read_scope`` / ``deps.write_scope``)."""
