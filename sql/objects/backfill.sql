-- Batched backfills: CALL migrate_guard.backfill(table, set_clause, where_clause, ...).
--
-- The procedure runs with the caller's privileges (it is SECURITY INVOKER, which is also what
-- lets it COMMIT between batches), and so does its bookkeeping in migrate_guard.backfills: row
-- level security lets a role see and change only the jobs of roles it is a member of. The three
-- SECURITY DEFINER helpers below answer narrow questions about other roles' jobs and sessions.

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

-- A role works with its own jobs (and those of roles it is a member of); superusers see all.
ALTER TABLE migrate_guard.backfills ENABLE ROW LEVEL SECURITY;
CREATE POLICY backfills_own ON migrate_guard.backfills
    USING (pg_catalog.pg_has_role(current_user, run_by, 'MEMBER'))
    WITH CHECK (pg_catalog.pg_has_role(current_user, run_by, 'MEMBER'));
ALTER TABLE migrate_guard.backfill_xids ENABLE ROW LEVEL SECURITY;
CREATE POLICY backfill_xids_own ON migrate_guard.backfill_xids
    USING (EXISTS (SELECT 1 FROM migrate_guard.backfills b WHERE b.id = job_id));
REVOKE ALL ON migrate_guard.backfills, migrate_guard.backfill_xids FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON migrate_guard.backfills TO PUBLIC;
GRANT SELECT, INSERT ON migrate_guard.backfill_xids TO PUBLIC;

-- Whether a job's session is running it right now: the session is running a statement that
-- began before the job's last update (a session that went idle, or moved on to another
-- statement, or the calling session itself, is not running the job). With track_activities off
-- nothing is known, and the job is taken as running. SECURITY DEFINER so that the state of other
-- roles' sessions is visible; it returns nothing but this boolean.
CREATE FUNCTION migrate_guard._backfill_alive(pid integer, started timestamptz, last_update timestamptz)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
SELECT $1 <> pg_backend_pid()
   AND EXISTS (SELECT 1 FROM pg_stat_activity a
                WHERE a.pid = $1 AND a.backend_start = $2
                  AND (a.state = 'disabled' OR (a.state = 'active' AND a.query_start <= $3)))
$$;

-- The job with this table and clauses that another session is running right now, of any role
-- (two sessions must not run one job). SECURITY DEFINER; it tells only who and since when.
CREATE FUNCTION migrate_guard._backfill_running_elsewhere(p_table oid, p_set text, p_where text)
RETURNS TABLE (job_id bigint, backend_pid integer, run_by name, updated_at timestamptz)
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
SELECT b.id, b.backend_pid, b.run_by, b.updated_at FROM migrate_guard.backfills b
 WHERE b.table_oid = p_table AND b.set_clause = p_set AND b.where_clause IS NOT DISTINCT FROM p_where
   AND b.status = 'running' AND migrate_guard._backfill_alive(b.backend_pid, b.backend_start, b.updated_at)
 ORDER BY b.id DESC LIMIT 1
$$;

-- Whether a job exists at all, of any role (to tell "no such job" from "not yours").
CREATE FUNCTION migrate_guard._backfill_job_exists(p_job bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM migrate_guard.backfills b WHERE b.id = p_job) $$;

-- Starts a job, or takes over the unfinished job with the same table and clauses (resume).
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
    IF NOT has_any_column_privilege(p_table, 'UPDATE') THEN
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
       AND b.status IN ('running', 'failed', 'cancelled')
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
               run_by = current_user, backend_pid = pg_backend_pid(), backend_start = me,
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
            CASE WHEN p_strategy = 'pages' THEN p_pages END, node, p_rows, 'running', current_user,
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
     WHERE b.id = p_job AND b.status = 'running' AND b.backend_pid = pg_backend_pid();
END
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

CREATE PROCEDURE migrate_guard.backfill(
    tbl regclass,
    set_clause text,
    where_clause text DEFAULT NULL,
    batch_size integer DEFAULT 10000,
    pause interval DEFAULT '0',
    lock_timeout interval DEFAULT '1s',
    max_retries integer DEFAULT 10,
    restart boolean DEFAULT false)
LANGUAGE plpgsql
AS $proc$
DECLARE
    p              record;
    job            migrate_guard.backfills;
    lo             text[];
    hi             text[];
    n              bigint;
    updated        bigint;
    lo_page        bigint;
    hi_page        bigint;
    pass           integer := 0;
    pass_end       bigint;
    pass_updated   bigint := 0;
    next_position  text[];
    swept          bigint := 0;
    batch_pass     integer;
    batch_end      bigint;
    xids           xid[] := '{}';
    batch_xid      bigint;
    attempt        integer;
    failed         boolean;
    cancel         boolean := false;
    done           boolean := false;
    err_state      text;
    err_message    text;
    err_hint       text;
    run_start      timestamptz;
    run_done       bigint := 0;
    start_fraction double precision;
    lock_ms        text;
BEGIN
    -- Whatever is wrong with the call fails here, before anything is written.
    PERFORM migrate_guard._backfill_check_call();
    IF pause IS NULL OR pause < interval '0' THEN
        RAISE EXCEPTION 'migrate_guard.backfill: pause must be a non-negative interval, not %', coalesce(pause::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF lock_timeout IS NULL OR lock_timeout < interval '1 millisecond' OR lock_timeout > interval '2147483647 milliseconds' THEN
        RAISE EXCEPTION 'migrate_guard.backfill: lock_timeout must be between 1ms and 24 days, not %', coalesce(lock_timeout::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Each batch gives up waiting for a lock after lock_timeout and is retried.';
    END IF;
    -- A retry only helps with a fresh snapshot, which READ COMMITTED takes for every statement.
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'migrate_guard.backfill runs its batches at READ COMMITTED, and this session''s transactions are %',
                        upper(pg_catalog.current_setting('transaction_isolation'))
            USING ERRCODE = '0A000',
                  HINT = 'SET default_transaction_isolation = ''read committed'' in this session, then CALL it again.';
    END IF;
    IF max_retries IS NULL OR max_retries < 0 THEN
        RAISE EXCEPTION 'migrate_guard.backfill: max_retries must be zero or more, not %', coalesce(max_retries::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO p FROM migrate_guard._backfill_prepare(tbl, set_clause, where_clause, batch_size);
    -- Planning a batch checks what only the server knows: columns, functions, types, and the
    -- caller's right to UPDATE the table (EXPLAIN checks privileges, and runs nothing).
    BEGIN
        IF p.strategy = 'pages' THEN
            EXECUTE 'EXPLAIN ' || p.update_sql USING '(0,0)'::tid, '(0,0)'::tid, '{}'::xid[];
        ELSE
            EXECUTE 'EXPLAIN ' || p.update_sql USING NULL::text[], NULL::text[];
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT, err_hint = PG_EXCEPTION_HINT;
        RAISE EXCEPTION 'migrate_guard.backfill: %', err_message
            USING ERRCODE = err_state, DETAIL = 'Each batch would run: ' || p.update_sql,
                  HINT = coalesce(nullif(err_hint, ''), 'Check set_clause and where_clause against the table.');
    END;
    -- In a context that cannot commit (a function, for instance) this fails, with nothing written.
    COMMIT;

    job := migrate_guard._backfill_job_open(tbl, p.table_name, set_clause, nullif(btrim(where_clause), ''),
                                            batch_size, p.strategy, p.key_columns, p.estimated_rows,
                                            p.total_pages, restart);
    IF p.strategy = 'pages' THEN
        lo_page := coalesce(job.position[1]::bigint, 0);
        pass := coalesce(job.position[2]::int, 0);
        pass_end := coalesce(job.position[3]::bigint, job.end_page);
        pass_updated := coalesce(job.position[4]::bigint, 0);
        SELECT coalesce(array_agg(x.xid), '{}') INTO xids FROM migrate_guard.backfill_xids x WHERE x.job_id = job.id;
    ELSE
        lo := job.position;
    END IF;
    IF pg_catalog.current_setting('statement_timeout') NOT IN ('0', '0ms') THEN
        RAISE NOTICE 'migrate_guard: statement_timeout (%) applies to this whole CALL, not to each batch',
                     pg_catalog.current_setting('statement_timeout')
            USING DETAIL = 'When it expires the job stops after its last committed batch; the same CALL resumes it.',
                  HINT = 'For a long backfill, SET statement_timeout = 0 in this session first (each batch is a short transaction of its own).';
    END IF;
    IF p.strategy = 'pages' AND nullif(btrim(where_clause), '') IS NULL THEN
        RAISE NOTICE 'migrate_guard: % has no primary key and the backfill has no where_clause', p.table_name
            USING DETAIL = 'Rows that other sessions update while the job runs can move to a page it has already walked (and be missed) or to one it has not reached yet (and be updated again).',
                  HINT = 'Give a where_clause that is false for rows already done (such as new_column IS NULL): the job then sweeps the table for such rows at the end.';
    END IF;
    IF job.batches > 0 THEN
        RAISE NOTICE 'migrate_guard: resuming backfill job % on % after batch % (% rows updated so far)',
                     job.id, job.table_name, job.batches, job.rows_updated;
    ELSE
        RAISE NOTICE 'migrate_guard: backfill job % on %: %, each batch committed on its own',
                     job.id, job.table_name,
                     CASE WHEN p.strategy = 'pages'
                          THEN 'in physical order (no primary key), ' || p.pages_per_batch || ' pages of about '
                               || batch_size || ' rows per batch'
                          ELSE 'in primary key order (' || array_to_string(p.key_columns, ', ') || '), '
                               || batch_size || ' rows per batch' END;
    END IF;
    COMMIT;

    run_start := clock_timestamp();
    start_fraction := migrate_guard._backfill_fraction(job);
    lock_ms := (extract(epoch FROM lock_timeout) * 1000)::bigint::text;
    WHILE NOT done LOOP
        attempt := 0;
        LOOP
            failed := false;
            BEGIN
                PERFORM pg_catalog.set_config('lock_timeout', lock_ms, true);
                -- Deferred constraints are checked in the batch, where a failure is handled.
                SET CONSTRAINTS ALL IMMEDIATE;
                IF p.strategy = 'primary key' THEN
                    hi := NULL;
                    n := NULL;
                    EXECUTE p.bound_sql INTO hi, n USING lo, batch_size;
                    n := coalesce(n, 0);
                    updated := 0;
                    IF n > 0 THEN
                        EXECUTE p.update_sql USING lo, hi;
                        GET DIAGNOSTICS updated = ROW_COUNT;
                    END IF;
                    done := n < batch_size;
                    cancel := migrate_guard._backfill_job_batch(job.id, coalesce(hi, lo), n, updated, attempt, NULL, done);
                ELSE
                    IF pg_catalog.pg_relation_filenode(tbl) IS DISTINCT FROM job.table_filenode THEN
                        RAISE EXCEPTION 'the table was rewritten (VACUUM FULL, CLUSTER or a rewriting ALTER TABLE) while the job walked its pages'
                            USING ERRCODE = '55000';
                    END IF;
                    hi_page := least(lo_page + p.pages_per_batch, pass_end);
                    EXECUTE p.update_sql
                        USING pg_catalog.format('(%s,0)', lo_page)::tid, pg_catalog.format('(%s,0)', hi_page)::tid, xids;
                    GET DIAGNOSTICS updated = ROW_COUNT;
                    n := updated;
                    batch_xid := CASE WHEN updated > 0 THEN migrate_guard._backfill_current_xid() END;
                    next_position := ARRAY[hi_page, pass, pass_end, pass_updated + updated]::text[];
                    done := false;
                    IF hi_page >= pass_end THEN
                        -- Rows other sessions update can move to a page the walk has passed (or
                        -- past its end). With a where_clause to tell which rows still need the
                        -- update, sweep the whole table again for them (the job's own row
                        -- versions are skipped), while a pass finds some, three times at most.
                        IF nullif(btrim(where_clause), '') IS NOT NULL AND pass < 3
                           AND (pass = 0 OR pass_updated + updated > 0) THEN
                            next_position := ARRAY[0, pass + 1,
                                                   pg_catalog.pg_relation_size(tbl) / pg_catalog.current_setting('block_size')::int,
                                                   0]::text[];
                        ELSE
                            done := true;
                        END IF;
                    END IF;
                    cancel := migrate_guard._backfill_job_batch(job.id, next_position, n, updated, attempt,
                                                                batch_xid, done);
                END IF;
                EXIT;
            EXCEPTION
                WHEN lock_not_available OR deadlock_detected OR serialization_failure THEN
                    GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
                    attempt := attempt + 1;
                    IF attempt > max_retries THEN
                        failed := true;
                        EXIT;
                    END IF;
                    RAISE NOTICE 'migrate_guard: backfill job %: batch % rolled back (%: %); retry % of %',
                                 job.id, job.batches + 1, err_state, err_message, attempt, max_retries;
                    PERFORM pg_catalog.pg_sleep(least(5.0, 0.05 * 2 ^ attempt) * (0.5 + random() / 2));
                WHEN query_canceled OR OTHERS THEN
                    GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
                    failed := true;
                    EXIT;
            END;
        END LOOP;

        IF failed THEN
            -- The batch rolled back; the job keeps the position of its last committed batch.
            PERFORM migrate_guard._backfill_job_end(job.id, 'failed', err_state || ': ' || err_message);
            COMMIT;
            RAISE EXCEPTION 'migrate_guard: backfill job % failed in batch %: %', job.id, job.batches + 1, err_message
                USING ERRCODE = err_state,
                      DETAIL = pg_catalog.format('%s batches (%s rows updated) are committed%s.', job.batches, job.rows_updated,
                                                 CASE WHEN attempt > 0 THEN ', and the failing batch was tried ' || attempt || ' times' ELSE '' END),
                      HINT = 'Fix the cause, then run the same CALL again: the job resumes after its last committed batch.';
        END IF;
        COMMIT;

        job.batches := job.batches + 1;
        job.rows_done := job.rows_done + n;
        job.rows_updated := job.rows_updated + updated;
        IF p.strategy = 'pages' THEN
            run_done := run_done + (hi_page - lo_page);
            IF pass > 0 THEN
                swept := swept + updated;
            END IF;
            batch_pass := pass;
            batch_end := pass_end;
            job.position := next_position;
            lo_page := next_position[1]::bigint;
            pass := next_position[2]::int;
            pass_end := next_position[3]::bigint;
            pass_updated := next_position[4]::bigint;
            IF batch_xid IS NOT NULL THEN
                xids := xids || batch_xid::text::xid;
            END IF;
        ELSE
            run_done := run_done + n;
            lo := coalesce(hi, lo);
        END IF;
        IF NOT done THEN
            RAISE NOTICE '%', migrate_guard._backfill_progress(
                job.id, job.batches, job.rows_done, job.rows_total, job.rows_updated,
                CASE WHEN p.strategy = 'pages' THEN hi_page END, batch_end,
                run_done, extract(epoch FROM clock_timestamp() - run_start)::float8, start_fraction,
                nullif(batch_pass, 0));
        END IF;
        IF cancel AND NOT done THEN
            PERFORM migrate_guard._backfill_job_end(job.id, 'cancelled', 'cancelled with migrate_guard.cancel_backfill()');
            COMMIT;
            RAISE EXCEPTION 'migrate_guard: backfill job % was cancelled after batch %', job.id, job.batches
                USING ERRCODE = '57014',
                      DETAIL = pg_catalog.format('%s rows updated so far; every committed batch stays.', job.rows_updated),
                      HINT = 'Run the same CALL again to resume it, or with restart => true to start over.';
        END IF;
        IF NOT done AND pause > interval '0' THEN
            PERFORM pg_catalog.pg_sleep_for(pause);
        END IF;
    END LOOP;
    -- (How long it took is worth saying only for a run that took a while: the per-batch lines
    -- already give the rate.)
    RAISE NOTICE 'migrate_guard: backfill job % done: % rows updated in % batches%',
                 job.id, job.rows_updated, job.batches,
                 CASE WHEN clock_timestamp() - run_start >= interval '10 seconds'
                      THEN ' (this run: ' || migrate_guard._backfill_duration(extract(epoch FROM clock_timestamp() - run_start)::float8) || ')'
                      ELSE '' END
                 || CASE WHEN pass > 0 THEN pg_catalog.format('; sweeping for rows other sessions wrote meanwhile: %s pass(es), %s rows updated', pass, swept)
                         ELSE '' END;
END
$proc$;
COMMENT ON PROCEDURE migrate_guard.backfill(regclass, text, text, integer, interval, interval, integer, boolean) IS
    'migrate_guard: UPDATE table SET set_clause [WHERE where_clause] in committed, throttled, resumable batches';

-- How a backfill would walk the table, without changing anything.
CREATE FUNCTION migrate_guard.backfill_plan(
    tbl regclass, set_clause text, where_clause text DEFAULT NULL, batch_size integer DEFAULT 10000)
RETURNS TABLE (table_name text, table_size text, estimated_rows bigint, walk text, rows_per_batch integer,
               estimated_batches bigint, resumes text, batch_statement text, first_batch_plan text)
LANGUAGE plpgsql
AS $$
DECLARE
    p     record;
    job   migrate_guard.backfills;
    hi    text[];
    n     bigint;
    line  text;
    plan  text := '';
BEGIN
    SELECT * INTO p FROM migrate_guard._backfill_prepare(tbl, backfill_plan.set_clause, backfill_plan.where_clause,
                                                         backfill_plan.batch_size);
    IF p.strategy = 'pages' THEN
        FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || p.update_sql
                    USING '(0,0)'::tid, pg_catalog.format('(%s,0)', p.pages_per_batch)::tid, '{}'::xid[] LOOP
            plan := plan || line || E'\n';
        END LOOP;
    ELSE
        EXECUTE p.bound_sql INTO hi, n USING NULL::text[], backfill_plan.batch_size;
        FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || p.update_sql USING NULL::text[], hi LOOP
            plan := plan || line || E'\n';
        END LOOP;
    END IF;
    SELECT * INTO job FROM migrate_guard.backfills b
     WHERE b.table_oid = tbl AND b.set_clause = backfill_plan.set_clause
       AND b.where_clause IS NOT DISTINCT FROM nullif(btrim(backfill_plan.where_clause), '')
       AND b.status IN ('running', 'failed', 'cancelled')
     ORDER BY b.id DESC LIMIT 1;
    table_name := p.table_name;
    table_size := pg_catalog.pg_size_pretty(p.table_size);
    estimated_rows := p.estimated_rows;
    walk := CASE WHEN p.strategy = 'pages'
                 THEN 'physical order (no primary key): ' || p.total_pages || ' pages, ' || p.pages_per_batch
                      || ' per batch'
                 ELSE 'primary key order (' || array_to_string(p.key_columns, ', ') || ')' END;
    rows_per_batch := backfill_plan.batch_size;
    estimated_batches := CASE WHEN p.strategy = 'pages'
                              THEN greatest(1, ceil(p.total_pages::numeric / p.pages_per_batch))::bigint
                              ELSE greatest(1, ceil(coalesce(p.estimated_rows, 0)::numeric / backfill_plan.batch_size))::bigint END;
    resumes := CASE WHEN job.id IS NULL THEN 'no: a new job starts'
                    ELSE pg_catalog.format('job %s (%s) after batch %s, %s rows updated so far', job.id, job.status,
                                           job.batches, job.rows_updated) END;
    batch_statement := p.update_sql;
    first_batch_plan := rtrim(plan, E'\n');
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION migrate_guard.backfill_plan(regclass, text, text, integer) IS
    'migrate_guard: how migrate_guard.backfill() would walk the table (changes nothing)';

CREATE FUNCTION migrate_guard.list_backfills()
RETURNS TABLE (job_id bigint, table_name text, status text, done_percent numeric, batches bigint,
               rows_updated bigint, retries bigint, set_clause text, where_clause text, run_by name,
               backend_pid integer, started_at timestamptz, updated_at timestamptz, finished_at timestamptz,
               last_error text)
LANGUAGE sql STABLE PARALLEL RESTRICTED
AS $$
SELECT b.id, b.table_name,
       CASE WHEN b.status = 'running' AND b.cancel_requested THEN 'cancelling'
            WHEN b.status = 'running' AND NOT migrate_guard._backfill_alive(b.backend_pid, b.backend_start, b.updated_at)
                 THEN 'interrupted'
            ELSE b.status END,
       round((migrate_guard._backfill_fraction(b) * 100)::numeric, 1),
       b.batches, b.rows_updated, b.retries, b.set_clause, b.where_clause, b.run_by, b.backend_pid,
       b.started_at, b.updated_at, b.finished_at, b.last_error
FROM migrate_guard.backfills b
ORDER BY b.id
$$;
COMMENT ON FUNCTION migrate_guard.list_backfills() IS
    'migrate_guard: your backfill jobs (all of them for superusers) with their status (interrupted: no session runs it) and progress';

CREATE FUNCTION migrate_guard.cancel_backfill(job_id bigint)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job migrate_guard.backfills;
BEGIN
    -- Row level security shows only the caller's jobs.
    SELECT * INTO job FROM migrate_guard.backfills b WHERE b.id = cancel_backfill.job_id FOR UPDATE;
    IF NOT FOUND AND migrate_guard._backfill_job_exists(cancel_backfill.job_id) THEN
        RAISE EXCEPTION 'migrate_guard: permission denied to cancel backfill job %', cancel_backfill.job_id
            USING ERRCODE = '42501', DETAIL = 'It runs as a role you are not a member of.';
    ELSIF NOT FOUND THEN
        RAISE EXCEPTION 'migrate_guard: there is no backfill job %', coalesce(cancel_backfill.job_id::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'SELECT * FROM migrate_guard.list_backfills() shows your jobs.';
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
COMMENT ON FUNCTION migrate_guard.cancel_backfill(bigint) IS
    'migrate_guard: stop a backfill job after its current batch (the same CALL resumes it later)';
