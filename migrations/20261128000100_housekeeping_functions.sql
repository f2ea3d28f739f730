-- Housekeeping through two narrow SECURITY DEFINER functions, so the
-- _housekeeping role needs neither ownership nor DELETE on the time series:
--
-- * REFRESH MATERIALIZED VIEW needs ownership of the view (PostgreSQL < 17
--   has no MAINTAIN privilege), and drop_chunks needs ownership of the
--   hypertable; both belong to the role that ran the migrations.
-- * Each function does one fixed thing with an allow-listed argument, runs
--   with the search_path captured here (the pipeline schema, pg_temp last),
--   and names its tables qualified by current_schema(), so a caller's
--   temporary objects cannot shadow them.
--
-- EXECUTE is revoked from PUBLIC here; the operator grants it to the
-- _housekeeping role only (docs/privileges.md).

-- Delete rows older than `older_than` from one time-series table: drop_chunks
-- first when the table is a TimescaleDB hypertable (whole chunks, cheap), then
-- DELETE whatever is left before the cut-off (the boundary chunk, or the whole
-- range on plain PostgreSQL). Refuses a cut-off less than a day old.
CREATE FUNCTION purge_time_series(relation text, older_than timestamptz)
RETURNS TABLE (chunks_dropped integer, rows_deleted bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
DECLARE
    time_column text;
    ts_schema   name;
    is_hyper    boolean := false;
    target      text;
BEGIN
    time_column := CASE relation
        WHEN 'positions'  THEN 'gps_time'
        WHEN 'alarms'     THEN 'alarm_time'
        WHEN 'heartbeats' THEN 'gate_time'
    END;
    IF time_column IS NULL THEN
        RAISE EXCEPTION 'purge_time_series: % is not a time-series table', relation
            USING ERRCODE = '22023';
    END IF;
    IF older_than IS NULL OR older_than > now() - interval '1 day' THEN
        RAISE EXCEPTION 'purge_time_series: older_than must be at least one day in the past'
            USING ERRCODE = '22023';
    END IF;
    target := format('%I.%I', current_schema(), relation);
    chunks_dropped := 0;
    SELECT n.nspname INTO ts_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'timescaledb';
    IF ts_schema IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                                WHERE hypertable_schema = $1 AND hypertable_name = $2)'
            INTO is_hyper USING current_schema(), relation;
        IF is_hyper THEN
            EXECUTE format('SELECT count(*)::integer FROM %I.drop_chunks(%L::regclass, older_than => $1)',
                           ts_schema, target)
                INTO chunks_dropped USING older_than;
        END IF;
    END IF;
    EXECUTE format('DELETE FROM %s WHERE %I < $1', target, time_column) USING older_than;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    RETURN NEXT;
END
$fn$;
REVOKE ALL ON FUNCTION purge_time_series(text, timestamptz) FROM PUBLIC;

-- Refresh every reporting materialized view (concurrently: readers are never
-- blocked) and record each refresh in refresh_log, failed ones included.
CREATE FUNCTION refresh_reporting()
RETURNS TABLE (object text, status text, error text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
DECLARE
    mv      text;
    started timestamptz;
BEGIN
    FOREACH mv IN ARRAY ARRAY['mv_trips_per_day'] LOOP
        started := clock_timestamp();
        object := mv;
        error := NULL;
        BEGIN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I.%I', current_schema(), mv);
            status := 'ok';
        EXCEPTION WHEN OTHERS THEN
            status := 'failed';
            error := SQLERRM;
        END;
        EXECUTE format('INSERT INTO %I.refresh_log (object, started_at, finished_at, status, error)
                        VALUES ($1, $2, $3, $4, $5)', current_schema())
            USING mv, started, clock_timestamp(), status, error;
        RETURN NEXT;
    END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION refresh_reporting() FROM PUBLIC;
