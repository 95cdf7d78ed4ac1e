-- A pgTAP test as application teams write them: fixtures created, filled, altered and dropped
-- inside the test's own transaction, which is rolled back at the end. On a guarded database the
-- fixtures are new tables, so nothing here is blocked; the one statement on an existing,
-- populated table is, and pgTAP sees the guard's SQLSTATE.
BEGIN;
SELECT plan(8);

CREATE TABLE fixture_orders (id int PRIMARY KEY, account_id bigint NOT NULL, total numeric NOT NULL);
INSERT INTO fixture_orders SELECT g, g % 100, g * 1.5 FROM generate_series(1, 5000) g;
ALTER TABLE fixture_orders ADD COLUMN note text NOT NULL DEFAULT md5(random()::text);
ALTER TABLE fixture_orders ALTER COLUMN total TYPE numeric(12, 2);
CREATE INDEX fixture_orders_account ON fixture_orders (account_id);
ALTER TABLE fixture_orders ADD CONSTRAINT fixture_orders_total CHECK (total > 0);

SELECT has_table('fixture_orders', 'the fixture table exists');
SELECT has_column('fixture_orders', 'note', 'the rewriting ADD COLUMN on the fixture ran');
SELECT col_type_is('fixture_orders', 'total', 'numeric(12,2)', 'the type change on the fixture ran');
SELECT has_index('fixture_orders', 'fixture_orders_account', 'the index on the fixture was built');
SELECT results_eq('SELECT count(*)::int FROM fixture_orders', ARRAY[5000], 'the fixture holds its rows');

ALTER TABLE fixture_orders RENAME COLUMN note TO remark;
SELECT has_column('fixture_orders', 'remark', 'the fixture column was renamed');

SELECT throws_ok(
    'CREATE INDEX accounts_email ON public.accounts (email)',
    'MG001', NULL,
    'a blocking index on the populated application table is refused by the guard');

DROP TABLE fixture_orders;
SELECT hasnt_table('fixture_orders', 'the fixture was dropped');

SELECT * FROM finish();
ROLLBACK;
