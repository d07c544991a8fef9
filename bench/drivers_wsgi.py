"""WSGI module of bench/bench_drivers.py only: the product app plus one bench route.

`GET /bench/db-sleep` holds a database connection for a query that waits 50 ms on the server, the shape of
a request whose time is spent waiting on the database. It is not part of the product.
"""

import sqlalchemy as sa

from cloudeye import app
from services.extensions import db

SLEEP_S = 0.05


@app.get("/bench/db-sleep")
def bench_db_sleep():
    value = db.session.execute(sa.text("SELECT SLEEP(:s)"), {"s": SLEEP_S}).scalar()
    db.session.rollback()
    return {"slept": SLEEP_S, "result": int(value)}
