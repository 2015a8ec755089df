"""Checkpoints: store pair_state's blobs uncompressed.

A worker rewrites each busy pair's checkpoint (tens of KB of binary floats) every poll round.
pglz barely shrinks float data but cost about half of the round's write time, so the state and
outbox columns skip compression (EXTERNAL: still out of line, not compressed). Existing values
are unchanged; new writes follow the new storage.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE pair_state ALTER COLUMN state SET STORAGE EXTERNAL, ALTER COLUMN outbox SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE pair_state ALTER COLUMN state SET STORAGE EXTENDED, ALTER COLUMN outbox SET STORAGE EXTENDED")
