-- migrate_guard.backfill: batched, committed, resumable updates. Every table here has a counter
-- column n that the set clause increments, so "every row updated exactly once" is n = 1 everywhere.
SET migrate_guard.lock_timeout = 0;
\set SHOW_CONTEXT never
CREATE SCHEMA bf;
SET search_path = bf, public;

-- A key walk: 25,000 rows, batches of 10,000, a filter.
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, email_lower text, n int NOT NULL DEFAULT 0);
INSERT INTO accounts SELECT g, 'User' || g || '@Example.COM', NULL, 0 FROM generate_series(1, 25000) g;
VACUUM ANALYZE accounts;
UPDATE accounts SET email_lower = lower(email) WHERE id % 10 = 0;  -- some rows are already done
ANALYZE accounts;

-- The plan: how it would walk the table, the statement of each batch, the plan of the first.
SELECT * FROM migrate_guard.backfill_plan('accounts', 'email_lower = lower(email), n = n + 1', 'email_lower IS NULL') \gx

SET client_min_messages = warning;  -- the progress lines carry rates and times
CALL migrate_guard.backfill('accounts', 'email_lower = lower(email), n = n + 1', 'email_lower IS NULL');
RESET client_min_messages;
SELECT n, count(*), count(*) FILTER (WHERE email_lower = lower(email)) AS lowered FROM accounts GROUP BY n ORDER BY n;
SELECT job_id, table_name, status, done_percent, batches, rows_updated, retries, set_clause, where_clause, last_error
FROM migrate_guard.list_backfills();
SELECT strategy, key_columns, position, rows_total, rows_done, rows_updated, batches, finished_at IS NOT NULL AS finished
FROM migrate_guard.backfills WHERE table_name = 'bf.accounts';

-- A finished job is not resumed: the same call starts a new job (nothing left to do here).
CALL migrate_guard.backfill('accounts', 'email_lower = lower(email), n = n + 1', 'email_lower IS NULL', batch_size => 100000);
SELECT max(n) AS max_n FROM accounts;

-- Composite keys of any type, including a timestamp whose text form depends on DateStyle: the
-- job fails half way (a trigger), DateStyle changes, and the job resumes where it stopped.
CREATE TABLE events (tenant text, at timestamptz, seq int, payload text, n int NOT NULL DEFAULT 0,
                     PRIMARY KEY (tenant, at, seq));
INSERT INTO events SELECT 't' || (g % 3), timestamptz '2026-01-01 00:00+00' + g * interval '1 minute', g % 7, 'p', 0
FROM generate_series(1, 3000) g;
VACUUM ANALYZE events;
ANALYZE events;
CREATE TABLE trip (armed boolean);
INSERT INTO trip VALUES (true);
VACUUM ANALYZE trip;
CREATE FUNCTION trip_wire() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq = 3 AND NEW.tenant = 't2' AND NEW.at > timestamptz '2026-01-02 00:00+00' AND (SELECT armed FROM trip) THEN
        RAISE EXCEPTION 'trip wire at %/%/%', NEW.tenant, NEW.at, NEW.seq;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER events_trip BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION trip_wire();
SET client_min_messages = warning;
SET timezone = 'UTC';
CALL migrate_guard.backfill('events', 'payload = upper(payload), n = n + 1', batch_size => 500);
RESET client_min_messages;
SELECT l.status, l.batches, l.rows_updated, b.position, l.last_error FROM migrate_guard.list_backfills() l
JOIN migrate_guard.backfills b ON b.id = l.job_id WHERE l.table_name = 'bf.events';
SELECT n, count(*) FROM events GROUP BY n ORDER BY n;
-- The plan says the same call would resume the job; a cancel keeps it resumable.
SELECT resumes FROM migrate_guard.backfill_plan('events', 'payload = upper(payload), n = n + 1', batch_size => 500);
SELECT migrate_guard.cancel_backfill(3);
SELECT status FROM migrate_guard.list_backfills() WHERE job_id = 3;
UPDATE trip SET armed = false;
SET datestyle = 'SQL, DMY';
SET timezone = 'America/New_York';
-- (The batch size may change when resuming; one batch finishes it here.)
CALL migrate_guard.backfill('events', 'payload = upper(payload), n = n + 1', batch_size => 5000);
RESET datestyle;
RESET timezone;
SELECT n, count(*) FROM events GROUP BY n ORDER BY n;
SELECT status, batches, rows_updated FROM migrate_guard.list_backfills() WHERE table_name = 'bf.events';
-- A finished job cannot be cancelled.
SELECT migrate_guard.cancel_backfill(3);

-- restart => true abandons the unfinished job and starts from the beginning (the rows of its
-- committed batches are updated again: that is what starting over means).
CREATE TABLE redo (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO redo SELECT g, 0 FROM generate_series(1, 300) g;
VACUUM ANALYZE redo;
CREATE FUNCTION redo_wire() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.id = 250 AND (SELECT armed FROM trip) THEN RAISE EXCEPTION 'redo wire'; END IF; RETURN NEW; END $$;
CREATE TRIGGER redo_trip BEFORE UPDATE ON redo FOR EACH ROW EXECUTE FUNCTION redo_wire();
UPDATE trip SET armed = true;
SET client_min_messages = warning;
CALL migrate_guard.backfill('redo', 'n = n + 1', batch_size => 100);
UPDATE trip SET armed = false;
CALL migrate_guard.backfill('redo', 'n = n + 1', batch_size => 100, restart => true);
RESET client_min_messages;
SELECT n, count(*) FROM redo GROUP BY n ORDER BY n;
SELECT job_id, status, batches, rows_updated FROM migrate_guard.list_backfills() WHERE table_name = 'bf.redo' ORDER BY job_id;

-- A page walk (no primary key). Free space on later pages makes PostgreSQL put the new row
-- versions of early batches there, ahead of the walk: they are not updated a second time.
CREATE TABLE logs (k int, level text, n int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off);
INSERT INTO logs SELECT g, 'info', 0 FROM generate_series(1, 20000) g;
DELETE FROM logs WHERE k > 10000 AND k % 2 = 0;
VACUUM ANALYZE logs;
-- (The plan of each batch depends on the version: see versions.sql.)
SELECT table_name, walk, rows_per_batch, estimated_batches, resumes
FROM migrate_guard.backfill_plan('logs', 'level = upper(level), n = n + 1', batch_size => 2000) \gx
SET client_min_messages = warning;
CALL migrate_guard.backfill('logs', 'level = upper(level), n = n + 1', batch_size => 2000);
RESET client_min_messages;
SELECT n, level, count(*) FROM logs GROUP BY n, level ORDER BY n;
-- (The scenario did happen: rows of the first batch now live on pages the walk reached later.)
SELECT count(*) > 0 AS first_batch_rows_moved_ahead
FROM logs l, migrate_guard.backfills b
WHERE b.table_name = 'bf.logs' AND l.k <= 100
  AND (l.ctid::text::point)[0] BETWEEN (SELECT substring(walk FROM ', (\d+) per batch')::int
                                           FROM migrate_guard.backfill_plan('logs', 'n = n', NULL, 2000))
                                   AND b.end_page - 1;
SELECT status, batches, rows_updated, (SELECT count(*) FROM migrate_guard.backfill_xids x WHERE x.job_id = b.id) AS batch_xids
FROM migrate_guard.backfills b WHERE table_name = 'bf.logs';

-- A rewrite between two runs of a page walk (here VACUUM FULL) moves the rows: the job refuses
-- to resume from a page position that means nothing any more.
CREATE TABLE heap2 (k int, v text, n int NOT NULL DEFAULT 0);
INSERT INTO heap2 SELECT g, 'x', 0 FROM generate_series(1, 3000) g;
ANALYZE heap2;
CREATE FUNCTION heap2_wire() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.k = 2000 AND (SELECT armed FROM trip) THEN RAISE EXCEPTION 'heap2 wire'; END IF; RETURN NEW; END $$;
CREATE TRIGGER heap2_trip BEFORE UPDATE ON heap2 FOR EACH ROW EXECUTE FUNCTION heap2_wire();
UPDATE trip SET armed = true;
SET client_min_messages = warning;
CALL migrate_guard.backfill('heap2', 'v = ''y'', n = n + 1', 'v = ''x''', batch_size => 500);
UPDATE trip SET armed = false;
/* migrate_guard:allow blocking-rewrite */ VACUUM FULL heap2;
CALL migrate_guard.backfill('heap2', 'v = ''y'', n = n + 1', 'v = ''x''', batch_size => 500);
-- With a where_clause that is false for the rows already done, starting over is safe.
CALL migrate_guard.backfill('heap2', 'v = ''y'', n = n + 1', 'v = ''x''', batch_size => 500, restart => true);
RESET client_min_messages;
SELECT n, v, count(*) FROM heap2 GROUP BY n, v;

-- Keys of fixed-length character type keep their length in the position.
CREATE TABLE codes (code char(3) PRIMARY KEY, label text, n int NOT NULL DEFAULT 0);
INSERT INTO codes SELECT chr(65 + g / 26 % 26) || chr(65 + g % 26) || chr(48 + g % 10), 'l', 0
FROM generate_series(0, 675) g ON CONFLICT DO NOTHING;
SET client_min_messages = warning;
CALL migrate_guard.backfill('codes', 'label = upper(label), n = n + 1', batch_size => 100);
RESET client_min_messages;
SELECT n, count(*) FROM codes GROUP BY n;
SELECT position FROM migrate_guard.backfills WHERE table_name = 'bf.codes';

-- A partitioned table with a primary key is walked through its parent.
CREATE TABLE orders (id int, placed date, total numeric, n int NOT NULL DEFAULT 0, PRIMARY KEY (id, placed))
    PARTITION BY RANGE (placed);
CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE orders_2026 PARTITION OF orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO orders SELECT g, date '2025-06-01' + (g % 400), g, 0 FROM generate_series(1, 4000) g;
ANALYZE orders;
SET client_min_messages = warning;
CALL migrate_guard.backfill('orders', 'total = total * 2, n = n + 1', batch_size => 1500);
RESET client_min_messages;
SELECT tableoid::regclass AS partition, n, count(*) FROM orders GROUP BY 1, 2 ORDER BY 1, 2;

-- The notices of a small job: start, end.
CREATE TABLE tiny (id int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0);
INSERT INTO tiny SELECT g, 'x', 0 FROM generate_series(1, 10) g;
CALL migrate_guard.backfill('tiny', 'v = v || v, n = n + 1');
CREATE TABLE tiny_heap (v text, n int NOT NULL DEFAULT 0);
INSERT INTO tiny_heap SELECT 'x', 0 FROM generate_series(1, 10) g;
CALL migrate_guard.backfill('tiny_heap', 'v = v || v, n = n + 1', batch_size => 100);
SELECT (SELECT sum(n) FROM tiny) AS tiny_updates, (SELECT sum(n) FROM tiny_heap) AS tiny_heap_updates;

-- statement_timeout covers the whole CALL, not each batch: the job says so when it starts.
SET statement_timeout = '10min';
CALL migrate_guard.backfill('tiny', 'v = v || v, n = n + 1', restart => true);
RESET statement_timeout;

-- An empty table is done at once.
CREATE TABLE empty_one (id int PRIMARY KEY, v text);
CALL migrate_guard.backfill('empty_one', 'v = ''x''');
