"""ra domain: entities, staff, orders, dossiers, sessions, tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 04:42:27.534878
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vault_id', sa.String(length=32), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('media_type', sa.String(length=50), nullable=False),
    sa.Column('original_name', sa.String(length=200), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retain_until', sa.Date(), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents')),
    sa.UniqueConstraint('vault_id', name=op.f('uq_documents_vault_id'))
    )
    op.create_table('entities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('siren', sa.String(length=9), nullable=False),
    sa.Column('siret', sa.String(length=14), nullable=True),
    sa.Column('departement', sa.String(length=3), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['entities.id'], name=op.f('fk_entities_parent_id_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entities')),
    sa.UniqueConstraint('siren', name=op.f('uq_entities_siren'))
    )
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entities_departement'), ['departement'], unique=False)
        batch_op.create_index(batch_op.f('ix_entities_parent_id'), ['parent_id'], unique=False)

    op.create_table('holders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('surname', sa.String(length=64), nullable=False),
    sa.Column('given_names', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('title', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holders'))
    )
    with op.batch_alter_table('holders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_holders_email'), ['email'], unique=False)

    op.create_table('staff_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('totp_secret', sa.LargeBinary(), nullable=True),
    sa.Column('totp_enabled', sa.Boolean(), nullable=False),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('training_date', sa.Date(), nullable=True),
    sa.Column('designation_document_id', sa.Integer(), nullable=True),
    sa.Column('designation_status', sa.String(length=10), nullable=False),
    sa.Column('designation_decided_by_id', sa.Integer(), nullable=True),
    sa.Column('designation_decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('scope_epci_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['designation_decided_by_id'], ['staff_accounts.id'], name=op.f('fk_staff_accounts_designation_decided_by_id_staff_accounts')),
    sa.ForeignKeyConstraint(['designation_document_id'], ['documents.id'], name=op.f('fk_staff_accounts_designation_document_id_documents')),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_staff_accounts_entity_id_entities')),
    sa.ForeignKeyConstraint(['scope_epci_id'], ['entities.id'], name=op.f('fk_staff_accounts_scope_epci_id_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_accounts')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_accounts_email'))
    )
    op.create_table('aed_scope_entities',
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_aed_scope_entities_entity_id_entities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_accounts.id'], name=op.f('fk_aed_scope_entities_staff_id_staff_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('staff_id', 'entity_id', name=op.f('pk_aed_scope_entities'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_accounts.id'], name=op.f('fk_api_tokens_staff_id_staff_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_staff_id'), ['staff_id'], unique=False)

    op.create_table('conventions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['staff_accounts.id'], name=op.f('fk_conventions_decided_by_id_staff_accounts')),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_conventions_document_id_documents')),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_conventions_entity_id_entities')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['staff_accounts.id'], name=op.f('fk_conventions_submitted_by_id_staff_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conventions')),
    sa.UniqueConstraint('entity_id', name=op.f('uq_conventions_entity_id'))
    )
    op.create_table('delivery_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_date', sa.Date(), nullable=False),
    sa.Column('site_address', sa.String(length=300), nullable=False),
    sa.Column('on_site', sa.Boolean(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['staff_accounts.id'], name=op.f('fk_delivery_sessions_operator_id_staff_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_sessions'))
    )
    with op.batch_alter_table('delivery_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_sessions_operator_id'), ['operator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_sessions_session_date'), ['session_date'], unique=False)

    op.create_table('usb_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=True),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('so_pin_escrow', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_usb_tokens_entity_id_entities')),
    sa.ForeignKeyConstraint(['holder_id'], ['holders.id'], name=op.f('fk_usb_tokens_holder_id_holders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usb_tokens')),
    sa.UniqueConstraint('serial', name=op.f('uq_usb_tokens_serial'))
    )
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('token_choice', sa.String(length=10), nullable=False),
    sa.Column('reused_token_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('ordered_on', sa.Date(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivery_session_id', sa.Integer(), nullable=True),
    sa.Column('renewal_of_id', sa.Integer(), nullable=True),
    sa.Column('certificate_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_reason', sa.String(length=500), nullable=True),
    sa.Column('absent', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_orders_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff_accounts.id'], name=op.f('fk_orders_created_by_id_staff_accounts')),
    sa.ForeignKeyConstraint(['delivery_session_id'], ['delivery_sessions.id'], name=op.f('fk_orders_delivery_session_id_delivery_sessions')),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_orders_entity_id_entities')),
    sa.ForeignKeyConstraint(['holder_id'], ['holders.id'], name=op.f('fk_orders_holder_id_holders')),
    sa.ForeignKeyConstraint(['renewal_of_id'], ['certificates.id'], name=op.f('fk_orders_renewal_of_id_certificates')),
    sa.ForeignKeyConstraint(['reused_token_id'], ['usb_tokens.id'], name=op.f('fk_orders_reused_token_id_usb_tokens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('reference', name=op.f('uq_orders_reference'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_delivery_session_id'), ['delivery_session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_entity_id'), ['entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_state'), ['state'], unique=False)

    op.create_table('revocation_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_by_holder', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_by_id', sa.Integer(), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_revocation_requests_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['processed_by_id'], ['staff_accounts.id'], name=op.f('fk_revocation_requests_processed_by_id_staff_accounts')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['staff_accounts.id'], name=op.f('fk_revocation_requests_requested_by_id_staff_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revocation_requests'))
    )
    with op.batch_alter_table('revocation_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revocation_requests_certificate_id'), ['certificate_id'], unique=False)

    op.create_table('token_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('from_state', sa.String(length=12), nullable=True),
    sa.Column('to_state', sa.String(length=12), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['token_id'], ['usb_tokens.id'], name=op.f('fk_token_events_token_id_usb_tokens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_token_events'))
    )
    with op.batch_alter_table('token_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_events_token_id'), ['token_id'], unique=False)

    op.create_table('dossier_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('document_date', sa.Date(), nullable=True),
    sa.Column('review_status', sa.String(length=10), nullable=False),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_note', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_dossier_documents_document_id_documents')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_dossier_documents_order_id_orders')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['staff_accounts.id'], name=op.f('fk_dossier_documents_reviewed_by_id_staff_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dossier_documents'))
    )
    with op.batch_alter_table('dossier_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dossier_documents_order_id'), ['order_id'], unique=False)

    op.create_table('identity_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('document_type', sa.String(length=15), nullable=False),
    sa.Column('document_number', sa.LargeBinary(), nullable=False),
    sa.Column('document_expiry', sa.Date(), nullable=False),
    sa.Column('issuing_country', sa.String(length=3), nullable=False),
    sa.Column('names_match', sa.Boolean(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['staff_accounts.id'], name=op.f('fk_identity_checks_operator_id_staff_accounts')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_identity_checks_order_id_orders')),
    sa.ForeignKeyConstraint(['session_id'], ['delivery_sessions.id'], name=op.f('fk_identity_checks_session_id_delivery_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_checks'))
    )
    with op.batch_alter_table('identity_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_checks_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_checks_session_id'), ['session_id'], unique=False)

    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_documents_uploaded_by_id_staff_accounts'), 'staff_accounts', ['uploaded_by_id'], ['id'], use_alter=True)

    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('order_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('revocation_code_hash', sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f('ix_certificates_order_id'), ['order_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_certificates_order_id_orders'), 'orders', ['order_id'], ['id'], use_alter=True)


def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_documents_uploaded_by_id_staff_accounts'), type_='foreignkey')
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_certificates_order_id_orders'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_certificates_order_id'))
        batch_op.drop_column('revocation_code_hash')
        batch_op.drop_column('order_id')

    with op.batch_alter_table('identity_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_checks_session_id'))
        batch_op.drop_index(batch_op.f('ix_identity_checks_order_id'))

    op.drop_table('identity_checks')
    with op.batch_alter_table('dossier_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dossier_documents_order_id'))

    op.drop_table('dossier_documents')
    with op.batch_alter_table('token_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_events_token_id'))

    op.drop_table('token_events')
    with op.batch_alter_table('revocation_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revocation_requests_certificate_id'))

    op.drop_table('revocation_requests')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_state'))
        batch_op.drop_index(batch_op.f('ix_orders_holder_id'))
        batch_op.drop_index(batch_op.f('ix_orders_entity_id'))
        batch_op.drop_index(batch_op.f('ix_orders_delivery_session_id'))

    op.drop_table('orders')
    op.drop_table('usb_tokens')
    with op.batch_alter_table('delivery_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_sessions_session_date'))
        batch_op.drop_index(batch_op.f('ix_delivery_sessions_operator_id'))

    op.drop_table('delivery_sessions')
    op.drop_table('conventions')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_staff_id'))

    op.drop_table('api_tokens')
    op.drop_table('aed_scope_entities')
    op.drop_table('staff_accounts')
    with op.batch_alter_table('holders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_holders_email'))

    op.drop_table('holders')
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entities_parent_id'))
        batch_op.drop_index(batch_op.f('ix_entities_departement'))

    op.drop_table('entities')
    op.drop_table('documents')
