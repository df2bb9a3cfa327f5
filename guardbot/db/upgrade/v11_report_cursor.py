from mautrix.util.async_db import Connection, Scheme

from guardbot.db.upgrade import upgrade_table


@upgrade_table.register(description="how far the management room's reports have got")
async def upgrade_v11(conn: Connection, scheme: Scheme) -> None:
    # One row: the last finished action (done_at, id) a report has told. It starts after what
    # was done before, which no report will tell now.
    await conn.execute(
        """CREATE TABLE report_cursor (
            id        INTEGER PRIMARY KEY,
            done_at   BIGINT NOT NULL,
            action_id BIGINT NOT NULL
        )"""
    )
    await conn.execute(
        "INSERT INTO report_cursor (id, done_at, action_id) SELECT 1,"
        " COALESCE(MAX(done_at), 0), COALESCE(MAX(id), 0) FROM action"
    )
    # The reports' timer asks every few seconds what finished after the cursor: a range of
    # this index, not a scan of every action ever finished.
    await conn.execute("CREATE INDEX action_finished ON action (done_at, id)")
