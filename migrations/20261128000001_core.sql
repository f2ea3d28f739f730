-- FleetPipeline core schema. Applied by the operator (sqlx migrations, under
-- an advisory lock) with search_path set to the pipeline's own schema, so
-- every name here is unqualified and each pipeline schema gets its own copy.
-- Natural keys make every insert idempotent; the time column is part of every
-- unique key of positions and alarms so they can become hypertables.

CREATE TABLE devices (
    imei         text PRIMARY KEY,
    target       text,
    name         text,
    model        text,
    enabled      boolean     NOT NULL DEFAULT true,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz,
    attributes   jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE positions (
    imei         text             NOT NULL,
    gps_time     timestamptz      NOT NULL,
    lat          double precision NOT NULL,
    lng          double precision NOT NULL,
    speed        real,
    direction    smallint,
    altitude     real,
    satellites   smallint,
    acc          smallint,
    gps_mode     smallint         NOT NULL DEFAULT 0,
    post_type    smallint,
    status       bigint,
    distance_m   bigint,
    source       text             NOT NULL,
    received_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (imei, gps_time)
);
CREATE INDEX positions_gps_time ON positions (gps_time);

-- One row per device; an upsert only ever moves it forward in time.
CREATE TABLE latest_positions (
    imei         text PRIMARY KEY,
    gps_time     timestamptz      NOT NULL,
    lat          double precision NOT NULL,
    lng          double precision NOT NULL,
    speed        real,
    direction    smallint,
    acc          smallint,
    source       text             NOT NULL,
    updated_at   timestamptz      NOT NULL DEFAULT now()
);

CREATE TABLE alarms (
    imei         text             NOT NULL,
    alarm_type   text             NOT NULL,
    alarm_time   timestamptz      NOT NULL,
    alarm_name   text,
    lat          double precision,
    lng          double precision,
    speed        real,
    msg_class    smallint,
    source       text             NOT NULL,
    received_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (imei, alarm_type, alarm_time)
);
CREATE INDEX alarms_alarm_time ON alarms (alarm_time);

CREATE TABLE heartbeats (
    imei          text        NOT NULL,
    gate_time     timestamptz NOT NULL,
    power_level   smallint,
    gsm_sign      smallint,
    acc           smallint,
    oil_ele       smallint,
    gps_pos       smallint,
    power_status  smallint,
    fortify       smallint,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (imei, gate_time)
);

CREATE TABLE trips (
    imei           text        NOT NULL,
    start_time     timestamptz NOT NULL,
    end_time       timestamptz NOT NULL,
    distance_m     bigint      CHECK (distance_m >= 0),
    duration_s     integer,
    avg_speed      real,
    max_speed      real,
    start_lat      double precision,
    start_lng      double precision,
    end_lat        double precision,
    end_lng        double precision,
    start_address  text,
    end_address    text,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (imei, start_time)
);

-- Parking and idling periods (jimi.open.platform.report.parking).
CREATE TABLE parking (
    imei         text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('parking', 'idling')),
    start_time   timestamptz NOT NULL,
    end_time     timestamptz,
    duration_s   integer,
    lat          double precision,
    lng          double precision,
    address      text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (imei, kind, start_time)
);

-- The Tracksolid access token per target, shared by all runs. Expiry is a
-- timestamptz computed from our own clock, compared in UTC.
CREATE TABLE api_token (
    target        text PRIMARY KEY,
    access_token  text        NOT NULL,
    refresh_token text,
    expires_at    timestamptz NOT NULL,
    obtained_at   timestamptz NOT NULL DEFAULT now()
);

-- Reverse-geocoding cache, keyed by coordinates rounded to 1e-5 degrees.
CREATE TABLE geocode_cache (
    lat_e5      integer     NOT NULL,
    lng_e5      integer     NOT NULL,
    address     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lat_e5, lng_e5)
);

-- One row per run and target (and per webhook batch): never a negative count.
CREATE TABLE ingestion_log (
    id             bigserial PRIMARY KEY,
    endpoint       text        NOT NULL,
    target         text,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    rows_inserted  bigint      NOT NULL CHECK (rows_inserted >= 0),
    rows_rejected  bigint      NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    status         text        NOT NULL CHECK (status IN ('ok', 'failed')),
    error          text
);
CREATE INDEX ingestion_log_endpoint_finished ON ingestion_log (endpoint, finished_at DESC);
CREATE INDEX ingestion_log_finished ON ingestion_log (finished_at);

CREATE TABLE refresh_log (
    id           bigserial PRIMARY KEY,
    object       text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    status       text        NOT NULL CHECK (status IN ('ok', 'failed')),
    error        text
);
CREATE INDEX refresh_log_finished ON refresh_log (finished_at);

-- Every raw push item, as received (undocumented fields turn up). The hash
-- of (kind, payload) makes a retried push insert nothing.
CREATE TABLE push_events (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    kind          text        NOT NULL,
    imei          text,
    payload       jsonb       NOT NULL,
    payload_hash  text        NOT NULL,
    rejected      text,
    UNIQUE (kind, payload_hash)
);
CREATE INDEX push_events_received ON push_events (received_at);

-- The endpoints this pipeline schedules, written by the operator: only
-- active ones count for health, so a job turned off never shows as stale.
CREATE TABLE pipeline_endpoints (
    endpoint         text PRIMARY KEY,
    active           boolean     NOT NULL DEFAULT true,
    max_age_seconds  integer     NOT NULL CHECK (max_age_seconds > 0),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW v_ingest_health AS
SELECT e.endpoint,
       e.max_age_seconds,
       l.finished_at   AS last_run,
       l.status        AS last_status,
       l.rows_inserted AS last_rows_inserted,
       l.error         AS last_error,
       CASE
           WHEN l.finished_at IS NULL THEN 'Unknown'
           WHEN l.status = 'failed' THEN 'Failing'
           WHEN l.finished_at < now() - make_interval(secs => e.max_age_seconds) THEN 'Stale'
           ELSE 'Healthy'
       END AS state
FROM pipeline_endpoints e
LEFT JOIN LATERAL (
    SELECT i.finished_at, i.status, i.rows_inserted, i.error
    FROM ingestion_log i
    WHERE i.endpoint = e.endpoint
    ORDER BY i.finished_at DESC
    LIMIT 1
) l ON true
WHERE e.active;

-- Reporting objects for Grafana (read through the _reader role).
CREATE VIEW v_latest_positions AS
SELECT lp.imei, d.name, d.target, lp.gps_time, lp.lat, lp.lng, lp.speed,
       lp.direction, lp.acc, lp.source, lp.updated_at
FROM latest_positions lp
LEFT JOIN devices d USING (imei)
WHERE coalesce(d.enabled, true);

CREATE MATERIALIZED VIEW mv_trips_per_day AS
SELECT imei,
       (date_trunc('day', start_time AT TIME ZONE 'UTC'))::date AS day,
       count(*)                      AS trips,
       coalesce(sum(distance_m), 0)  AS distance_m,
       coalesce(sum(duration_s), 0)  AS duration_s
FROM trips
GROUP BY 1, 2;
CREATE UNIQUE INDEX mv_trips_per_day_key ON mv_trips_per_day (imei, day);

-- TimescaleDB, when the extension is installed in this database: positions,
-- alarms and heartbeats become hypertables. Retention stays ours (housekeeping
-- runs drop_chunks), so no TimescaleDB background policy is created. The
-- extension's functions live in its own schema (usually public), which is not
-- on this migration's search_path: call them qualified.
DO $$
DECLARE
    ts_schema name;
BEGIN
    SELECT n.nspname INTO ts_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'timescaledb';
    IF ts_schema IS NOT NULL THEN
        EXECUTE format('SELECT %I.create_hypertable(%L::regclass, %L, if_not_exists => true, migrate_data => true)',
                       ts_schema, format('%I.positions', current_schema()), 'gps_time');
        EXECUTE format('SELECT %I.create_hypertable(%L::regclass, %L, if_not_exists => true, migrate_data => true)',
                       ts_schema, format('%I.alarms', current_schema()), 'alarm_time');
        EXECUTE format('SELECT %I.create_hypertable(%L::regclass, %L, if_not_exists => true, migrate_data => true)',
                       ts_schema, format('%I.heartbeats', current_schema()), 'gate_time');
    END IF;
END
$$;
