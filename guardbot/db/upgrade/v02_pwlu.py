from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="named guests (PWLU): accounts, nags, claim tokens")
async def upgrade_v2(conn: Connection, scheme: Scheme) -> None:
    # One row per named guest. No password here: it is derived from the secret named by key_id.
    # state: unconfirmed (registration under way, or cut off by a crash), active, done.
    await conn.execute(
        """CREATE TABLE pwlu (
            user_id      TEXT PRIMARY KEY,
            key_id       TEXT NOT NULL,
            state        TEXT NOT NULL,
            done_reason  TEXT,
            password_set BOOLEAN NOT NULL DEFAULT false,
            created_at   BIGINT NOT NULL,
            nags_sent    INTEGER NOT NULL DEFAULT 0,
            sending      INTEGER,
            next_nag_at  BIGINT,
            attempts     INTEGER NOT NULL DEFAULT 0,
            dm_room_id   TEXT,
            dm_creating  BOOLEAN NOT NULL DEFAULT false,
            dm_left      BOOLEAN NOT NULL DEFAULT false,
            dm_reinvited BOOLEAN NOT NULL DEFAULT false,
            checked_at   BIGINT
        )"""
    )
    # The scheduler's only query: rows whose nag is due. Finished rows have no next_nag_at and
    # are not in the index at all, so its cost follows the nags due, not the PWLUs known.
    await conn.execute("CREATE INDEX pwlu_due ON pwlu (next_nag_at) WHERE next_nag_at IS NOT NULL")
    await conn.execute(
        "CREATE UNIQUE INDEX pwlu_dm ON pwlu (dm_room_id) WHERE dm_room_id IS NOT NULL"
    )
    # Claim links: only a SHA-256 of each token is kept, so the table gives nobody a way in.
    await conn.execute(
        """CREATE TABLE pwlu_claim (
            token_hash TEXT PRIMARY KEY,
            user_id    TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL
        )"""
    )
    await conn.execute("CREATE INDEX pwlu_claim_user ON pwlu_claim (user_id)")
    await conn.execute("CREATE INDEX pwlu_claim_expiry ON pwlu_claim (expires_at)")
