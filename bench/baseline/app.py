"""COMPARISON BASELINE -- NOT PRODUCT CODE.

An old-stack-style JIMI push receiver, written only so that `fleet-bench
webhook` can measure the Rust receiver against the shape of what it
replaces: FastAPI + psycopg2, synchronous handlers run in FastAPI's thread
pool, a psycopg2 connection pool, and one INSERT per pushed item (row by
row), committed once per request. It does none of what the product does
(no raw-event audit trail, no latest_positions upsert, no event-time guard,
no constant-time token check, no metrics); it is the lower bound of the old
design's cost, not a reimplementation of it. Never deploy it.

Configuration (environment):
  BASELINE_DATABASE_URL   libpq URL of the database
  BASELINE_SCHEMA         schema holding positions/alarms (search_path)
  BASELINE_TOKEN          the push token
  BASELINE_DB_CONNECTIONS pool size (default 8, as the bench gives ours)

Run: python -m uvicorn app:app --host 127.0.0.1 --port PORT
"""

import json
import os
import threading

import psycopg2
import psycopg2.pool
from fastapi import FastAPI, Form
from fastapi.responses import JSONResponse

DATABASE_URL = os.environ["BASELINE_DATABASE_URL"]
SCHEMA = os.environ.get("BASELINE_SCHEMA", "bench_baseline")
TOKEN = os.environ.get("BASELINE_TOKEN", "")
CONNECTIONS = int(os.environ.get("BASELINE_DB_CONNECTIONS", "8"))

POOL = psycopg2.pool.ThreadedConnectionPool(
    1, CONNECTIONS, DATABASE_URL, options=f"-c search_path={SCHEMA}"
)
# ThreadedConnectionPool raises when exhausted; wait for a connection instead.
SLOTS = threading.BoundedSemaphore(CONNECTIONS)

app = FastAPI()

GPS_SQL = (
    "INSERT INTO positions (imei, gps_time, lat, lng, speed, direction, gps_mode, source) "
    "VALUES (%s, %s::timestamptz, %s, %s, %s, %s, %s, 'baseline') "
    "ON CONFLICT DO NOTHING"
)
ALARM_SQL = (
    "INSERT INTO alarms (imei, alarm_type, alarm_time, lat, lng, source) "
    "VALUES (%s, %s, %s::timestamptz, %s, %s, 'baseline') "
    "ON CONFLICT DO NOTHING"
)


def utc(text):
    return f"{text}+00"


def store(rows, sql):
    with SLOTS:
        conn = POOL.getconn()
        try:
            with conn.cursor() as cur:
                for row in rows:
                    cur.execute(sql, row)
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        finally:
            POOL.putconn(conn)


def refused():
    return JSONResponse({"code": 1, "msg": "token"}, status_code=401)


# Plain `def` handlers: FastAPI runs them in its worker thread pool.
@app.post("/pushgps")
def pushgps(token: str = Form(""), data_list: str = Form("[]")):
    if token != TOKEN:
        return refused()
    items = json.loads(data_list)
    rows = [
        (
            i["deviceImei"],
            utc(i["gpsTime"]),
            i["lat"],
            i["lng"],
            i.get("gpsSpeed"),
            i.get("direction"),
            i.get("gpsMode", 0),
        )
        for i in items
    ]
    store(rows, GPS_SQL)
    return {"code": 0, "msg": "success"}


@app.post("/pushalarm")
def pushalarm(token: str = Form(""), data_list: str = Form("[]")):
    if token != TOKEN:
        return refused()
    items = json.loads(data_list)
    rows = [
        (
            i["imei"],
            str(i["msg"]["alertType"]),
            utc(i["msg"]["alarmTime"]),
            i["msg"].get("lat"),
            i["msg"].get("lng"),
        )
        for i in items
    ]
    store(rows, ALARM_SQL)
    return {"code": 0, "msg": "success"}


@app.get("/readyz")
def readyz():
    return {"ok": True}
