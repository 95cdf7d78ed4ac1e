-- Batched backfills: CALL migrate_guard.backfill(table, set_clause, where_clause, ...).
--
-- The procedure is written in Rust (src/backfill/run.rs): it runs every batch with the caller's
-- privileges and commits between batches. Its bookkeeping in migrate_guard.backfills is written
-- only by the functions below, which run as the extension's owner and only the owner may
-- execute (src/privilege.rs); they know the caller from migrate_guard._caller(). A job belongs
-- to the role that started it: only that role resumes it (a call by any other role, a superuser
-- included, starts a job of its own), members of that role see and cancel it.

CREATE TABLE migrate_guard.backfills (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_oid        oid NOT NULL,
    table_name       text NOT NULL,
    set_clause       text NOT NULL,
    where_clause     text,
    batch_size       integer NOT NULL,
    strategy         text NOT NULL CHECK (strategy IN ('primary key', 'pages')),
    key_columns      text[] NOT NULL DEFAULT '{}',
    position         text[],
    end_page         bigint,
    table_filenode   oid,
    rows_total       bigint,
    rows_done        bigint NOT NULL DEFAULT 0,
    rows_updated     bigint NOT NULL DEFAULT 0,
    batches          bigint NOT NULL DEFAULT 0,
    retries          bigint NOT NULL DEFAULT 0,
    status           text NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled', 'abandoned')),
    cancel_requested boolean NOT NULL DEFAULT false,
    last_error       text,
    run_by           name NOT NULL,
    backend_pid      integer,
    backend_start    timestamptz,
    started_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz
);
COMMENT ON TABLE migrate_guard.backfills IS
    'migrate_guard: backfill jobs, one row per job, updated in the transaction of each batch';
COMMENT ON COLUMN migrate_guard.backfills.position IS
    'primary key walk: the last key done, as text; page walk: {next page, pass, end page of the pass, rows the pass updated} (pass 0 is the walk, 1-3 the sweeps); NULL before the first batch';
COMMENT ON COLUMN migrate_guard.backfills.end_page IS
    'page walk: the table''s pages when the job started (pages added later hold rows written after it)';
COMMENT ON COLUMN migrate_guard.backfills.table_filenode IS
    'page walk: the table''s file when the job started; a rewrite (VACUUM FULL, CLUSTER) makes page positions meaningless';

-- Page walk: the (sub)transaction ids of a job's committed batches. Row versions they wrote are
-- skipped if PostgreSQL put them on a page the job has not reached yet, so no row is updated twice.
CREATE TABLE migrate_guard.backfill_xids (
    job_id bigint NOT NULL REFERENCES migrate_guard.backfills (id) ON DELETE CASCADE,
    xid    xid NOT NULL
);
CREATE INDEX backfill_xids_job ON migrate_guard.backfill_xids (job_id);

-- A role reads its own jobs (and those of roles it is a member of); superusers read all. Nobody
-- writes them but the owner's functions.
ALTER TABLE migrate_guard.backfills ENABLE ROW LEVEL SECURITY;
CREATE POLICY backfills_own ON migrate_guard.backfills FOR SELECT
    USING (pg_catalog.pg_has_role(current_user, run_by, 'MEMBER'));
ALTER TABLE migrate_guard.backfill_xids ENABLE ROW LEVEL SECURITY;
CREATE POLICY backfill_xids_own ON migrate_guard.backfill_xids FOR SELECT
    USING (EXISTS (SELECT 1 FROM migrate_guard.backfills b WHERE b.id = job_id));
REVOKE ALL ON migrate_guard.backfills, migrate_guard.backfill_xids FROM PUBLIC;
GRANT SELECT ON migrate_guard.backfills, migrate_guard.backfill_xids TO PUBLIC;

-- Whether a job's session is running it right now: the session is running a statement that
-- began before the job's last update (a session that went idle, or moved on to another
-- statement, or the calling session itself, is not running the job). With track_activities off
-- nothing is known, and the job is taken as running. (Run as the owner: other roles' sessions
-- are visible.)
CREATE FUNCTION migrate_guard._backfill_alive(pid integer, started timestamptz, last_update timestamptz)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
SELECT $1 <> pg_backend_pid()
   AND EXISTS (SELECT 1 FROM pg_stat_activity a
                WHERE a.pid = $1 AND a.backend_start = $2
                  AND (a.state = 'disabled' OR (a.state = 'active' AND a.query_start <= $3)))
$$;

-- The job with this table and clauses that another session is running right now, of any role
-- (two sessions must not run one job): who and since when.
CREATE FUNCTION migrate_guard._backfill_running_elsewhere(p_table oid, p_set text, p_where text)
RETURNS TABLE (job_id bigint, backend_pid integer, run_by name, updated_at timestamptz)
LANGUAGE sql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
SELECT b.id, b.backend_pid, b.run_by, b.updated_at FROM migrate_guard.backfills b
 WHERE b.table_oid = p_table AND b.set_clause = p_set AND b.where_clause IS NOT DISTINCT FROM p_where
   AND b.status = 'running' AND migrate_guard._backfill_alive(b.backend_pid, b.backend_start, b.updated_at)
 ORDER BY b.id DESC LIMIT 1
$$;

-- Starts a job, or takes over the caller's own unfinished job with the same table and clauses
-- (resume).
CREATE FUNCTION migrate_guard._backfill_job_open(
    p_table oid, p_table_name text, p_set text, p_where text, p_batch_size integer,
    p_strategy text, p_keys text[], p_rows bigint, p_pages bigint, p_restart boolean)
RETURNS migrate_guard.backfills
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job     migrate_guard.backfills;
    other   record;
    me      timestamptz;
    node    oid := CASE WHEN p_strategy = 'pages' THEN pg_relation_filenode(p_table) END;
BEGIN
    IF NOT has_any_column_privilege(migrate_guard._caller(), p_table, 'UPDATE') THEN
        RAISE EXCEPTION 'permission denied for table %', p_table_name USING ERRCODE = '42501';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('migrate_guard.backfill'), hashtext(p_table::text));
    SELECT a.backend_start INTO me FROM pg_stat_activity a WHERE a.pid = pg_backend_pid();
    SELECT * INTO other FROM migrate_guard._backfill_running_elsewhere(p_table, p_set, p_where);
    IF FOUND THEN
        RAISE EXCEPTION 'migrate_guard: backfill job % on % is already running in another session',
                        other.job_id, p_table_name
            USING ERRCODE = '55006',
                  DETAIL = format('Backend %s runs it (as %s); its last batch committed at %s.',
                                  other.backend_pid, other.run_by, other.updated_at),
                  HINT = format('Wait for it to finish, or stop it with: SELECT migrate_guard.cancel_backfill(%s);', other.job_id);
    END IF;
    SELECT * INTO job FROM migrate_guard.backfills b
     WHERE b.table_oid = p_table AND b.set_clause = p_set AND b.where_clause IS NOT DISTINCT FROM p_where
       AND b.status IN ('running', 'failed', 'cancelled') AND b.run_by = migrate_guard._caller_name()
     ORDER BY b.id DESC LIMIT 1;
    IF FOUND AND p_restart THEN
        UPDATE migrate_guard.backfills b
           SET status = 'abandoned', finished_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE b.id = job.id;
    ELSIF FOUND THEN
        IF job.strategy <> p_strategy OR job.key_columns <> p_keys THEN
            RAISE EXCEPTION 'migrate_guard: backfill job % on % walked % (%), but the table now has %',
                            job.id, job.table_name, job.strategy, array_to_string(job.key_columns, ', '),
                            CASE WHEN p_strategy = 'pages' THEN 'no primary key'
                                 ELSE 'primary key (' || array_to_string(p_keys, ', ') || ')' END
                USING ERRCODE = '55000',
                      HINT = 'Start it over: CALL migrate_guard.backfill(…, restart => true).';
        END IF;
        IF job.table_filenode IS DISTINCT FROM node THEN
            RAISE EXCEPTION 'migrate_guard: backfill job % on % walks the table''s pages, and the table was rewritten since it started',
                            job.id, job.table_name
                USING ERRCODE = '55000',
                      DETAIL = 'VACUUM FULL, CLUSTER or a rewriting ALTER TABLE moved its rows: the job''s position means nothing any more.',
                      HINT = 'Start it over with restart => true, with a where_clause that is false for rows already done.';
        END IF;
        UPDATE migrate_guard.backfills b
           SET status = 'running', cancel_requested = false, last_error = NULL, batch_size = p_batch_size,
               backend_pid = pg_backend_pid(), backend_start = me,
               updated_at = clock_timestamp(), finished_at = NULL
         WHERE b.id = job.id
        RETURNING * INTO job;
        RETURN job;
    END IF;
    -- The id comes from _next_id(): the identity default's nextval() would change the caller's lastval().
    INSERT INTO migrate_guard.backfills
        (id, table_oid, table_name, set_clause, where_clause, batch_size, strategy, key_columns, end_page,
         table_filenode, rows_total, status, run_by, backend_pid, backend_start, started_at, updated_at)
    OVERRIDING SYSTEM VALUE
    VALUES (migrate_guard._next_id('migrate_guard.backfills'::regclass), p_table, p_table_name, p_set, p_where, p_batch_size, p_strategy, p_keys,
            CASE WHEN p_strategy = 'pages' THEN p_pages END, node, p_rows, 'running', migrate_guard._caller_name(),
            pg_backend_pid(), me, clock_timestamp(), clock_timestamp())
    RETURNING * INTO job;
    RETURN job;
END
$$;

-- Records a batch, in the batch's own transaction. Returns whether a cancel was requested.
CREATE FUNCTION migrate_guard._backfill_job_batch(
    p_job bigint, p_position text[], p_rows_done bigint, p_rows_updated bigint, p_retries integer,
    p_xid bigint, p_done boolean)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cancel boolean;
BEGIN
    UPDATE migrate_guard.backfills b
       SET position = p_position, rows_done = b.rows_done + p_rows_done,
           rows_updated = b.rows_updated + p_rows_updated, batches = b.batches + 1,
           retries = b.retries + p_retries, updated_at = clock_timestamp(),
           status = CASE WHEN p_done THEN 'done' ELSE b.status END,
           finished_at = CASE WHEN p_done THEN clock_timestamp() END
     WHERE b.id = p_job AND b.status = 'running' AND b.backend_pid = pg_backend_pid()
       AND b.run_by = migrate_guard._caller_name()
    RETURNING b.cancel_requested INTO cancel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migrate_guard: backfill job % is not running in this session', p_job
            USING ERRCODE = '55000';
    END IF;
    IF p_xid IS NOT NULL THEN
        INSERT INTO migrate_guard.backfill_xids (job_id, xid) VALUES (p_job, p_xid::text::xid);
    END IF;
    RETURN cancel;
END
$$;

-- Ends this session's job as failed or cancelled (it stays resumable).
CREATE FUNCTION migrate_guard._backfill_job_end(p_job bigint, p_status text, p_error text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_status NOT IN ('failed', 'cancelled') THEN
        RAISE EXCEPTION 'migrate_guard: a backfill job cannot be ended as %', p_status USING ERRCODE = '22023';
    END IF;
    UPDATE migrate_guard.backfills b
       SET status = p_status, last_error = p_error, updated_at = clock_timestamp(),
           finished_at = clock_timestamp()
     WHERE b.id = p_job AND b.status = 'running' AND b.backend_pid = pg_backend_pid()
       AND b.run_by = migrate_guard._caller_name();
END
$$;

-- The (sub)transaction ids of a job's committed batches (page walk).
CREATE FUNCTION migrate_guard._backfill_job_xids(p_job bigint)
RETURNS xid[]
LANGUAGE sql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(array_agg(x.xid), '{}') FROM migrate_guard.backfill_xids x
  JOIN migrate_guard.backfills b ON b.id = x.job_id
 WHERE x.job_id = p_job AND b.run_by = migrate_guard._caller_name()
$$;

-- Fraction of a job done, from its position (page walk) or its row estimate (key walk).
CREATE FUNCTION migrate_guard._backfill_fraction(job migrate_guard.backfills)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE
    WHEN job.status = 'done' THEN 1.0
    WHEN job.strategy = 'pages' THEN
        CASE WHEN coalesce(job.position[2]::int, 0) > 0 THEN 0.999
             WHEN job.end_page > 0 THEN coalesce(job.position[1]::bigint, 0)::float8 / job.end_page END
    WHEN job.rows_total > 0 THEN least(job.rows_done::float8 / job.rows_total, 0.999)
END
$$;

-- The caller's jobs (and those of roles it is a member of; all of them for superusers).
CREATE FUNCTION migrate_guard.list_backfills()
RETURNS TABLE (job_id bigint, table_name text, status text, done_percent numeric, batches bigint,
               rows_updated bigint, retries bigint, set_clause text, where_clause text, run_by name,
               backend_pid integer, started_at timestamptz, updated_at timestamptz, finished_at timestamptz,
               last_error text)
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'migrate_guard_entry';
COMMENT ON FUNCTION migrate_guard.list_backfills() IS
    'migrate_guard: your backfill jobs (all of them for superusers) with their status (interrupted: no session runs it) and progress';

CREATE FUNCTION migrate_guard._list_backfills()
RETURNS TABLE (job_id bigint, table_name text, status text, done_percent numeric, batches bigint,
               rows_updated bigint, retries bigint, set_clause text, where_clause text, run_by name,
               backend_pid integer, started_at timestamptz, updated_at timestamptz, finished_at timestamptz,
               last_error text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT b.id, b.table_name,
           CASE WHEN b.status = 'running' AND b.cancel_requested THEN 'cancelling'
                WHEN b.status = 'running' AND NOT migrate_guard._backfill_alive(b.backend_pid, b.backend_start, b.updated_at)
                     THEN 'interrupted'
                ELSE b.status END,
           round((migrate_guard._backfill_fraction(b) * 100)::numeric, 1),
           b.batches, b.rows_updated, b.retries, b.set_clause, b.where_clause, b.run_by, b.backend_pid,
           b.started_at, b.updated_at, b.finished_at, b.last_error
    FROM migrate_guard.backfills b
    WHERE pg_has_role(migrate_guard._caller(), b.run_by, 'MEMBER')
    ORDER BY b.id;
END
$$;

CREATE FUNCTION migrate_guard.cancel_backfill(job_id bigint)
RETURNS text
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'migrate_guard_entry';
COMMENT ON FUNCTION migrate_guard.cancel_backfill(bigint) IS
    'migrate_guard: stop a backfill job after its current batch (the same CALL resumes it later)';

-- Members of the job's role may cancel it (superusers any job).
CREATE FUNCTION migrate_guard._cancel_backfill(job_id bigint)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job migrate_guard.backfills;
BEGIN
    SELECT * INTO job FROM migrate_guard.backfills b WHERE b.id = _cancel_backfill.job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migrate_guard: there is no backfill job %', coalesce(_cancel_backfill.job_id::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'SELECT * FROM migrate_guard.list_backfills() shows your jobs.';
    END IF;
    IF NOT pg_has_role(migrate_guard._caller(), job.run_by, 'MEMBER') THEN
        RAISE EXCEPTION 'migrate_guard: permission denied to cancel backfill job %', job.id
            USING ERRCODE = '42501', DETAIL = 'It runs as a role you are not a member of.';
    END IF;
    IF job.status NOT IN ('running', 'failed') THEN
        RAISE EXCEPTION 'migrate_guard: backfill job % is %, not running', job.id, job.status USING ERRCODE = '55000';
    END IF;
    IF job.status = 'running' AND migrate_guard._backfill_alive(job.backend_pid, job.backend_start, job.updated_at) THEN
        UPDATE migrate_guard.backfills b SET cancel_requested = true, updated_at = clock_timestamp() WHERE b.id = job.id;
        RETURN format('backfill job %s stops after its current batch (backend %s)', job.id, job.backend_pid);
    END IF;
    UPDATE migrate_guard.backfills b
       SET status = 'cancelled', finished_at = clock_timestamp(), updated_at = clock_timestamp()
     WHERE b.id = job.id;
    RETURN format('backfill job %s cancelled', job.id);
END
$$;

-- The bodies and helpers run as the owner only (see the header).
REVOKE ALL ON FUNCTION
    migrate_guard._backfill_alive(integer, timestamptz, timestamptz),
    migrate_guard._backfill_running_elsewhere(oid, text, text),
    migrate_guard._backfill_job_open(oid, text, text, text, integer, text, text[], bigint, bigint, boolean),
    migrate_guard._backfill_job_batch(bigint, text[], bigint, bigint, integer, bigint, boolean),
    migrate_guard._backfill_job_end(bigint, text, text),
    migrate_guard._backfill_job_xids(bigint),
    migrate_guard._backfill_fraction(migrate_guard.backfills),
    migrate_guard._list_backfills(),
    migrate_guard._cancel_backfill(bigint)
FROM PUBLIC;
