from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="transactions, inbox, listed rooms, action queue")
async def upgrade_v1(conn: Connection, scheme: Scheme) -> None:
    serial = "BIGSERIAL" if scheme in (Scheme.POSTGRES, Scheme.COCKROACH) else "INTEGER"
    await conn.execute(
        """CREATE TABLE txn (
            txn_id      TEXT PRIMARY KEY,
            body_hash   TEXT NOT NULL,
            received_at BIGINT NOT NULL
        )"""
    )
    await conn.execute("CREATE INDEX txn_received ON txn (received_at)")
    # What the homeserver told guardbot and it has not finished deciding on yet.
    await conn.execute(
        f"""CREATE TABLE inbox (
            id          {serial} PRIMARY KEY,
            dedup_key   TEXT NOT NULL UNIQUE,
            kind        TEXT NOT NULL,
            payload     TEXT NOT NULL,
            received_at BIGINT NOT NULL
        )"""
    )
    await conn.execute(
        """CREATE TABLE room (
            room_id    TEXT PRIMARY KEY,
            listed     BOOLEAN NOT NULL,
            listed_at  BIGINT,
            checked_at BIGINT NOT NULL
        )"""
    )
    # Decided actions. dedup_key makes a decision land once however often it is reached.
    await conn.execute(
        f"""CREATE TABLE action (
            id              {serial} PRIMARY KEY,
            dedup_key       TEXT NOT NULL UNIQUE,
            kind            TEXT NOT NULL,
            room_id         TEXT NOT NULL,
            user_id         TEXT,
            payload         TEXT NOT NULL,
            state           TEXT NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL,
            created_at      BIGINT NOT NULL,
            done_at         BIGINT,
            outcome         TEXT
        )"""
    )
    await conn.execute(
        "CREATE INDEX action_due ON action (next_attempt_at) WHERE state = 'pending'"
    )
    await conn.execute("CREATE INDEX action_room ON action (room_id, state)")
