"""Interlink axis: exchanges per document and counterpart, status messages, the axis inbox

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('axis_exchanges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=10), nullable=False),
    sa.Column('counterpart', sa.String(length=35), nullable=False),
    sa.Column('edxml_document_id', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('last_status', sa.String(length=2), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.Column('package_sha256', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('signature_status', sa.String(length=32), nullable=True),
    sa.Column('pades_status', sa.String(length=32), nullable=True),
    sa.Column('verified', sa.Boolean(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_axis_exchanges_document_id_documents')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_axis_exchanges_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_axis_exchanges')),
    sa.UniqueConstraint('document_id', 'direction', 'counterpart', name=op.f('uq_axis_exchanges_document_id_direction_counterpart'))
    )
    with op.batch_alter_table('axis_exchanges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_axis_exchanges_document_id'), ['document_id'], unique=False)
        batch_op.create_index('ix_axis_exchanges_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_axis_exchanges_edxml_document_id'), ['edxml_document_id'], unique=False)

    op.create_table('axis_inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organ_id', sa.String(length=35), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('from_organ_id', sa.String(length=35), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('exchange_id', sa.Integer(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_axis_inbox_document_id_documents')),
    sa.ForeignKeyConstraint(['exchange_id'], ['axis_exchanges.id'], name=op.f('fk_axis_inbox_exchange_id_axis_exchanges')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_axis_inbox')),
    sa.UniqueConstraint('organ_id', 'message_id', name=op.f('uq_axis_inbox_organ_id_message_id'))
    )
    op.create_table('axis_status_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exchange_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=10), nullable=False),
    sa.Column('code', sa.String(length=2), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('staff', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['exchange_id'], ['axis_exchanges.id'], name=op.f('fk_axis_status_messages_exchange_id_axis_exchanges')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_axis_status_messages'))
    )
    with op.batch_alter_table('axis_status_messages', schema=None) as batch_op:
        batch_op.create_index('ix_axis_status_messages_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_axis_status_messages_exchange_id'), ['exchange_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('axis_status_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_axis_status_messages_exchange_id'))
        batch_op.drop_index('ix_axis_status_messages_due')

    op.drop_table('axis_status_messages')
    op.drop_table('axis_inbox')
    with op.batch_alter_table('axis_exchanges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_axis_exchanges_edxml_document_id'))
        batch_op.drop_index('ix_axis_exchanges_due')
        batch_op.drop_index(batch_op.f('ix_axis_exchanges_document_id'))

    op.drop_table('axis_exchanges')

