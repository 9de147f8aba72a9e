"""Seed data (`migrator seed`): the demo user and their inbox notebook, upserted by id.

A second `migrator seed` finds both rows as they are and commits nothing.
"""

from migrator.lancedb import seed

CREATED = 1_700_000_000_000  # ms since the epoch: fixed, so the rows are the same on every run


@seed(table="users", key="id")
def demo_user() -> list[dict[str, object]]:
    return [{"id": "demo", "email": "demo@example.com", "display_name": "Demo", "created_at": CREATED}]


@seed(table="notebooks", key="id")
def inbox() -> list[dict[str, object]]:
    return [{"id": "inbox", "user_id": "demo", "title": "Inbox", "created_at": CREATED, "updated_at": CREATED}]
