"""customer accounts: ledger entries, on-demand and automatic collection, disputes, details

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:20:37.468301

Column additions run in batch mode so that SQLite works; they only add columns and
indexes, which SQLite does in place (no table rebuild under the rows that reference it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('group_payment_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_code', sa.String(length=32), nullable=False),
    sa.Column('customer_reference', sa.String(length=35), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_payment_orders')),
    sa.UniqueConstraint('customer_reference', 'idempotency_key', name='uq_group_payment_orders_customer_idempotency')
    )
    op.create_table('disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debtor_account_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_disputes_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['debtor_account_id'], ['debtor_accounts.id'], name=op.f('fk_disputes_debtor_account_id_debtor_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
    sa.UniqueConstraint('creditor_id', 'idempotency_key', name='uq_disputes_creditor_idempotency')
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_account', ['debtor_account_id', 'status'], unique=False)

    op.create_table('account_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debtor_account_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_account_changes_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['debtor_account_id'], ['debtor_accounts.id'], name=op.f('fk_account_changes_debtor_account_id_debtor_accounts')),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], name=op.f('fk_account_changes_mandate_id_mandates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_changes')),
    sa.UniqueConstraint('creditor_id', 'idempotency_key', name='uq_account_changes_creditor_idempotency')
    )
    with op.batch_alter_table('account_changes', schema=None) as batch_op:
        batch_op.create_index('ix_account_changes_account', ['debtor_account_id', 'id'], unique=False)

    op.create_table('dispute_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_dispute_events_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_events_dispute_id_disputes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_events')),
    sa.UniqueConstraint('creditor_id', 'idempotency_key', name='uq_dispute_events_creditor_idempotency')
    )
    with op.batch_alter_table('dispute_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispute_events_dispute_id'), ['dispute_id'], unique=False)

    op.create_table('mandate_signatures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signer_name', sa.String(length=140), nullable=False),
    sa.Column('evidence_id', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_mandate_signatures_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], name=op.f('fk_mandate_signatures_mandate_id_mandates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mandate_signatures')),
    sa.UniqueConstraint('creditor_id', 'evidence_id', name='uq_mandate_signatures_creditor_evidence'),
    sa.UniqueConstraint('mandate_id', name=op.f('uq_mandate_signatures_mandate_id'))
    )
    op.create_table('account_change_fields',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=40), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['change_id'], ['account_changes.id'], name=op.f('fk_account_change_fields_change_id_account_changes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_change_fields'))
    )
    with op.batch_alter_table('account_change_fields', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_change_fields_change_id'), ['change_id'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debtor_account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('document_number', sa.String(length=35), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('label', sa.String(length=140), nullable=True),
    sa.Column('debit_request_id', sa.Integer(), nullable=True),
    sa.Column('applies_to_id', sa.Integer(), nullable=True),
    sa.Column('dispute_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_ledger_entries_positive_amount')),
    sa.ForeignKeyConstraint(['applies_to_id'], ['ledger_entries.id'], name=op.f('fk_ledger_entries_applies_to_id_ledger_entries')),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_ledger_entries_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['debit_request_id'], ['debit_requests.id'], name=op.f('fk_ledger_entries_debit_request_id_debit_requests')),
    sa.ForeignKeyConstraint(['debtor_account_id'], ['debtor_accounts.id'], name=op.f('fk_ledger_entries_debtor_account_id_debtor_accounts')),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_ledger_entries_dispute_id_disputes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('creditor_id', 'idempotency_key', name='uq_ledger_entries_creditor_idempotency'),
    sa.UniqueConstraint('creditor_id', 'kind', 'document_number', name='uq_ledger_entries_creditor_document'),
    sa.UniqueConstraint('debit_request_id', 'kind', name='uq_ledger_entries_request_kind')
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_account', ['debtor_account_id', 'issue_date', 'id'], unique=False)

    op.create_table('payment_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debtor_account_id', sa.Integer(), nullable=False),
    sa.Column('debit_request_id', sa.Integer(), nullable=False),
    sa.Column('group_order_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_payment_orders_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['debit_request_id'], ['debit_requests.id'], name=op.f('fk_payment_orders_debit_request_id_debit_requests')),
    sa.ForeignKeyConstraint(['debtor_account_id'], ['debtor_accounts.id'], name=op.f('fk_payment_orders_debtor_account_id_debtor_accounts')),
    sa.ForeignKeyConstraint(['group_order_id'], ['group_payment_orders.id'], name=op.f('fk_payment_orders_group_order_id_group_payment_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_orders')),
    sa.UniqueConstraint('creditor_id', 'idempotency_key', name='uq_payment_orders_creditor_idempotency'),
    sa.UniqueConstraint('debit_request_id', name=op.f('uq_payment_orders_debit_request_id'))
    )
    with op.batch_alter_table('payment_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_orders_group_order_id'), ['group_order_id'], unique=False)

    op.create_table('schedule_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debtor_account_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('run_date', sa.Date(), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('debit_request_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_schedule_slots_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['debit_request_id'], ['debit_requests.id'], name=op.f('fk_schedule_slots_debit_request_id_debit_requests')),
    sa.ForeignKeyConstraint(['debtor_account_id'], ['debtor_accounts.id'], name=op.f('fk_schedule_slots_debtor_account_id_debtor_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_slots')),
    sa.UniqueConstraint('debit_request_id', name=op.f('uq_schedule_slots_debit_request_id')),
    sa.UniqueConstraint('debtor_account_id', 'period', name='uq_schedule_slots_account_period')
    )
    op.create_table('dispute_invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_invoices_dispute_id_disputes')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_dispute_invoices_entry_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_invoices')),
    sa.UniqueConstraint('dispute_id', 'entry_id', name='uq_dispute_invoices_dispute_entry')
    )
    with op.batch_alter_table('dispute_invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispute_invoices_entry_id'), ['entry_id'], unique=False)

    op.create_table('prenotifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debtor_account_id', sa.Integer(), nullable=False),
    sa.Column('slot_id', sa.Integer(), nullable=False),
    sa.Column('debit_request_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('collection_date', sa.Date(), nullable=False),
    sa.Column('nominal_date', sa.Date(), nullable=False),
    sa.Column('mandate_reference', sa.String(length=35), nullable=False),
    sa.Column('creditor_identifier', sa.String(length=35), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_prenotifications_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['debit_request_id'], ['debit_requests.id'], name=op.f('fk_prenotifications_debit_request_id_debit_requests')),
    sa.ForeignKeyConstraint(['debtor_account_id'], ['debtor_accounts.id'], name=op.f('fk_prenotifications_debtor_account_id_debtor_accounts')),
    sa.ForeignKeyConstraint(['slot_id'], ['schedule_slots.id'], name=op.f('fk_prenotifications_slot_id_schedule_slots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prenotifications')),
    sa.UniqueConstraint('debit_request_id', name=op.f('uq_prenotifications_debit_request_id')),
    sa.UniqueConstraint('slot_id', name=op.f('uq_prenotifications_slot_id'))
    )
    with op.batch_alter_table('prenotifications', schema=None) as batch_op:
        batch_op.create_index('ix_prenotifications_creditor_collection', ['creditor_id', 'collection_date', 'id'], unique=False)

    op.create_table('request_invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debit_request_id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_request_invoices_creditor_id_creditors')),
    sa.ForeignKeyConstraint(['debit_request_id'], ['debit_requests.id'], name=op.f('fk_request_invoices_debit_request_id_debit_requests')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_request_invoices_entry_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_invoices')),
    sa.UniqueConstraint('debit_request_id', 'entry_id', name='uq_request_invoices_request_entry')
    )
    with op.batch_alter_table('request_invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_invoices_entry_id'), ['entry_id'], unique=False)

    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prenotification_days', sa.Integer(), server_default='14', nullable=False))
        batch_op.add_column(sa.Column('group_code', sa.String(length=32), nullable=True))

    with op.batch_alter_table('debtor_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_reference', sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column('collection_mode', sa.String(length=10), server_default='on_demand', nullable=False))
        batch_op.add_column(sa.Column('schedule_frequency', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('schedule_day', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('automatic_since', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('contact_name', sa.String(length=140), nullable=True))
        batch_op.add_column(sa.Column('contact_role', sa.String(length=70), nullable=True))
        batch_op.add_column(sa.Column('billing_street', sa.String(length=140), nullable=True))
        batch_op.add_column(sa.Column('billing_postcode', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('billing_town', sa.String(length=70), nullable=True))
        batch_op.add_column(sa.Column('billing_country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('phone', sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column('fax', sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.create_index('uq_debtor_accounts_creditor_customer', ['creditor_id', 'customer_reference'], unique=True)

    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.create_index('ix_mandates_debtor_account_id', ['debtor_account_id'], unique=False)



def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch rebuild would drop tables
    # that other rows reference, which foreign keys refuse on a ledger with data.
    op.drop_index('ix_mandates_debtor_account_id', table_name='mandates')
    op.drop_index('uq_debtor_accounts_creditor_customer', table_name='debtor_accounts')
    for column in (
        'email', 'fax', 'phone', 'billing_country', 'billing_town', 'billing_postcode', 'billing_street',
        'contact_role', 'contact_name', 'automatic_since', 'schedule_day', 'schedule_frequency',
        'collection_mode', 'customer_reference',
    ):
        op.drop_column('debtor_accounts', column)
    op.drop_column('creditors', 'group_code')
    op.drop_column('creditors', 'prenotification_days')

    with op.batch_alter_table('request_invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_invoices_entry_id'))

    op.drop_table('request_invoices')
    with op.batch_alter_table('prenotifications', schema=None) as batch_op:
        batch_op.drop_index('ix_prenotifications_creditor_collection')

    op.drop_table('prenotifications')
    with op.batch_alter_table('dispute_invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispute_invoices_entry_id'))

    op.drop_table('dispute_invoices')
    op.drop_table('schedule_slots')
    with op.batch_alter_table('payment_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_orders_group_order_id'))

    op.drop_table('payment_orders')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_account')

    op.drop_table('ledger_entries')
    with op.batch_alter_table('account_change_fields', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_change_fields_change_id'))

    op.drop_table('account_change_fields')
    op.drop_table('mandate_signatures')
    with op.batch_alter_table('dispute_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispute_events_dispute_id'))

    op.drop_table('dispute_events')
    with op.batch_alter_table('account_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_account_changes_account')

    op.drop_table('account_changes')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_disputes_account')

    op.drop_table('disputes')
    op.drop_table('group_payment_orders')
