-- Expand → migrate → contract, done by the database.
--
--   expand_column(table, column, new_name, new_type, using_expr, reverse_expr)  → expansion id
--   CALL backfill_expansion(id, …)    fill the new column of existing rows (migrate_guard.backfill)
--   contract(id)                      swap in the new column, drop the old one (short, lock_timeout)
--   abort_expansion(id)               undo an expansion that was not contracted
--   expand_rename_table(table, new_name) → expansion id (rename, and a view under the old name)
--   migrate_guard.expansions          what is in progress
--
-- Who does what (see src/privilege.rs): each helper a user calls is an entry point whose body, the
-- function of the same name with a leading underscore, runs as the extension's owner and only the
-- owner may execute. A body reads the catalog and writes the extension's tables itself; every
-- statement that needs the caller's rights (the DDL, a check of the caller's expressions) goes
-- through migrate_guard._as_caller(), which runs it as the caller with the caller's search_path.
-- The caller must own the tables, and an expansion's later steps (backfill_expansion, contract,
-- abort_expansion) run only as the role that started it: they run what that role wrote
-- (using_expr), so nobody else may run them for it. A step's own DDL is let through by the guard
-- while the body runs it (migrate_guard._step_begin), and recorded in history as such; nothing a
-- session can set does that.

CREATE TABLE migrate_guard.expansion_registry (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('rename column', 'change type', 'rename column and change type', 'rename table')),
    table_oid     oid NOT NULL,
    table_name    text NOT NULL,
    column_name   name,
    new_name      name,
    old_type      text,
    new_type      text,
    using_expr    text,
    reverse_expr  text,
    -- expanding, backfilling, contracting and aborting exist only inside a helper's own
    -- transaction: while a row is in one of them, the guard lets that transaction's statements
    -- through as the expansion's steps.
    phase         text NOT NULL CHECK (phase IN ('expanding', 'expanded', 'backfilling', 'contracting', 'contracted', 'aborting', 'aborted')),
    backfilled_at timestamptz,
    created_by    name NOT NULL,
    created_at    timestamptz NOT NULL,
    finished_by   name,
    finished_at   timestamptz,
    -- What contract(force => true) overrode: the usage evidence that clients still used the old
    -- name (NULL when contract was not forced, or nothing used it).
    forced_usage  text
);
COMMENT ON TABLE migrate_guard.expansion_registry IS
    'migrate_guard: expansions (expand → migrate → contract), one row each; see the view migrate_guard.expansions';

-- The columns an expansion changes: the expanded column, and the columns of other tables whose
-- foreign keys reference it (a primary key int → bigint changes them too).
CREATE TABLE migrate_guard.expansion_columns (
    expansion_id   bigint NOT NULL REFERENCES migrate_guard.expansion_registry (id) ON DELETE CASCADE,
    ord            integer NOT NULL,
    table_oid      oid NOT NULL,
    table_name     text NOT NULL,
    column_name    name NOT NULL,
    shadow_name    name NOT NULL,
    final_name     name NOT NULL,
    old_type       text NOT NULL,
    new_type       text NOT NULL,
    set_clause     text NOT NULL,
    where_clause   text NOT NULL,
    function_name  text NOT NULL,
    trigger_name   name NOT NULL,
    not_null_check name,
    default_expr   text,
    identity       "char",
    sequence_name  text,
    comment        text,
    -- [{old, new, constraint, contype, statement}]: the indexes to build on the new column
    indexes        jsonb NOT NULL DEFAULT '[]',
    -- [{table, references, table_name, constraint, new_constraint, definition}]: foreign keys to re-create
    -- (NOT VALID, then validated) before contract, replacing `constraint` at contract
    fks            jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (expansion_id, ord)
);
COMMENT ON TABLE migrate_guard.expansion_columns IS
    'migrate_guard: the columns each expansion adds, keeps in step and swaps in at contract';

-- Written only by the helpers' bodies (as the owner). A role reads its own expansions (and those of
-- roles it is a member of); superusers read all.
ALTER TABLE migrate_guard.expansion_registry ENABLE ROW LEVEL SECURITY;
CREATE POLICY expansion_registry_own ON migrate_guard.expansion_registry FOR SELECT
    USING (pg_catalog.pg_has_role(current_user, created_by, 'MEMBER'));
ALTER TABLE migrate_guard.expansion_columns ENABLE ROW LEVEL SECURITY;
CREATE POLICY expansion_columns_own ON migrate_guard.expansion_columns FOR SELECT
    USING (EXISTS (SELECT 1 FROM migrate_guard.expansion_registry e WHERE e.id = expansion_id));
REVOKE ALL ON migrate_guard.expansion_registry, migrate_guard.expansion_columns FROM PUBLIC;
GRANT SELECT ON migrate_guard.expansion_registry, migrate_guard.expansion_columns TO PUBLIC;

-- Runs the rest of the entry point as a step of expansion `id` on `tables`: the guard lets the
-- step's own DDL on those tables through, and a lock the step waits for gives up after
-- lock_timeout (migrate_guard.lock_timeout, 5s unless set) instead of making every query on the
-- table queue behind it.
CREATE FUNCTION migrate_guard._expansion_step(p_id bigint, p_tables oid[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM migrate_guard._step_begin(p_id, p_tables);
    IF current_setting('lock_timeout') IN ('0', '0ms') THEN
        PERFORM set_config('lock_timeout',
                           coalesce(nullif(current_setting('migrate_guard.lock_timeout', true), '0'), '5s'), true);
    END IF;
END
$$;

-- The tables an expansion changes: its table and the tables of its columns.
CREATE FUNCTION migrate_guard._expansion_tables(p_id bigint)
RETURNS oid[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
SELECT array_agg(DISTINCT t) FROM (
    SELECT e.table_oid AS t FROM migrate_guard.expansion_registry e WHERE e.id = p_id
    UNION ALL
    SELECT c.table_oid FROM migrate_guard.expansion_columns c WHERE c.expansion_id = p_id) s
$$;

-- The name of an expansion's copy of a column, index or constraint: the original's, cut to fit
-- PostgreSQL's 63 bytes, with _mg<expansion id> appended.
CREATE FUNCTION migrate_guard._expansion_name(base name, p_id bigint)
RETURNS name
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT SET search_path = pg_catalog, pg_temp
AS $$ SELECT (left(base, 63 - length('_mg' || p_id)) || '_mg' || p_id)::name $$;

-- Locks the tables in the given mode without risking a deadlock with the
-- application: clients that lock the same tables in another order (a join, a foreign key check)
-- would deadlock with a step that holds one table and waits for the next. Each attempt waits at
-- most 200ms, in a subtransaction whose failure releases what it got; attempts go on, with a
-- little random backoff, until the transaction's lock_timeout (5s when none) has passed.
CREATE FUNCTION migrate_guard._expansion_lock(p_tables oid[], p_mode text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    budget   text := current_setting('lock_timeout');
    deadline timestamptz;
    attempts integer := 0;
    names    text;
BEGIN
    -- Qualified names, in oid order (every step locks a set of tables in the same order).
    SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY c.oid) INTO names
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY (p_tables);
    IF p_mode NOT IN ('ACCESS EXCLUSIVE', 'SHARE ROW EXCLUSIVE') THEN
        RAISE EXCEPTION 'migrate_guard: unexpected lock mode %', p_mode USING ERRCODE = '22023';
    END IF;
    deadline := clock_timestamp() + CASE WHEN budget IN ('0', '0ms') THEN interval '5s' ELSE budget::interval END;
    LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '200ms', true);
            PERFORM migrate_guard._as_caller(format('LOCK TABLE %s IN %s MODE', names, p_mode), true);
            PERFORM set_config('lock_timeout', budget, true);
            RETURN;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            attempts := attempts + 1;
        END;
        IF clock_timestamp() >= deadline THEN
            PERFORM set_config('lock_timeout', budget, true);
            RAISE EXCEPTION 'migrate_guard: could not lock % (% mode) within lock_timeout: % attempts', names, p_mode, attempts
                USING ERRCODE = '55P03',
                      DETAIL = 'Long transactions or queries on these tables held their locks; nothing was changed.',
                      HINT = 'Run the same call again, at a quieter time or with a longer lock_timeout.';
        END IF;
        PERFORM pg_sleep(0.02 + random() * 0.08);
    END LOOP;
END
$$;

-- The caller must own the table (ALTER TABLE needs it, and the trigger function runs as them).
CREATE FUNCTION migrate_guard._expansion_check_table(tbl regclass, what text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
BEGIN
    SELECT r.relkind, r.relpersistence, r.relowner, r.relispartition,
           EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = r.oid OR i.inhrelid = r.oid) AS inherits
      INTO c FROM pg_class r WHERE r.oid = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migrate_guard.%: relation with OID % does not exist', what, tbl::oid USING ERRCODE = '42P01';
    END IF;
    IF NOT pg_has_role(migrate_guard._caller(), c.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'migrate_guard.%: must be owner of table %', what, tbl USING ERRCODE = '42501';
    END IF;
    IF what = 'expand_rename_table' AND c.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'migrate_guard.%: % is not a table', what, tbl USING ERRCODE = '42809';
    ELSIF what <> 'expand_rename_table' AND (c.relkind <> 'r' OR c.relispartition OR c.inherits) THEN
        RAISE EXCEPTION 'migrate_guard.%: % is not a plain table', what, tbl
            USING ERRCODE = '0A000',
                  DETAIL = 'Expansions work on ordinary tables without partitions or inheritance (CREATE INDEX CONCURRENTLY, which contract relies on, cannot build an index on a partitioned table).';
    END IF;
    IF c.relpersistence = 't' THEN
        RAISE EXCEPTION 'migrate_guard.%: % is a temporary table', what, tbl
            USING ERRCODE = '0A000', HINT = 'Only this session sees it: change it directly with ALTER TABLE.';
    END IF;
END
$$;

-- The expansion in progress on a table (and column), if any.
CREATE FUNCTION migrate_guard._expansion_in_progress(tbl oid, col name)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
SELECT e.id FROM migrate_guard.expansion_registry e
 WHERE e.phase NOT IN ('contracted', 'aborted')
   AND (EXISTS (SELECT 1 FROM migrate_guard.expansion_columns c
                 WHERE c.expansion_id = e.id AND c.table_oid = tbl AND (col IS NULL OR c.column_name = col))
        OR (e.kind = 'rename table' AND e.table_oid = tbl))
 ORDER BY e.id LIMIT 1
$$;

-- Refuses a column whose dependents an expansion cannot carry over to the new column.
CREATE FUNCTION migrate_guard._expansion_check_dependents(tbl regclass, attnum smallint, colname name)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    views    text;
    others   text;
BEGIN
    SELECT string_agg(DISTINCT r.ev_class::regclass::text, ', ') INTO views
      FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = tbl AND d.refobjsubid = attnum
       AND r.ev_class <> tbl;
    IF views IS NOT NULL THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: views use column % of %: %', colname, tbl, views
            USING ERRCODE = '2BP01',
                  DETAIL = 'contract drops the old column, which these views read.',
                  HINT = 'Change the views to read the column through a function or drop them first, then expand the column; re-create them on the new column after contract.';
    END IF;
    SELECT string_agg(DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), '; ') INTO others
      FROM pg_depend d
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = tbl AND d.refobjsubid = attnum
       AND d.deptype IN ('n', 'a')
       AND NOT (d.classid = 'pg_rewrite'::regclass)
       -- indexes (copied), sequences (serial: moved), the column's own default
       AND NOT (d.classid = 'pg_class'::regclass
                AND (SELECT relkind FROM pg_class WHERE oid = d.objid) IN ('i', 'S'))
       AND NOT (d.classid = 'pg_attrdef'::regclass
                AND (SELECT adnum FROM pg_attrdef WHERE oid = d.objid) = attnum
                AND (SELECT adrelid FROM pg_attrdef WHERE oid = d.objid) = tbl)
       -- primary key, unique (their indexes are copied), single-column foreign keys, NOT NULL
       AND NOT (d.classid = 'pg_constraint'::regclass
                AND EXISTS (SELECT 1 FROM pg_constraint k WHERE k.oid = d.objid
                               AND (k.contype IN ('p', 'u', 'n')
                                    OR (k.contype = 'f' AND cardinality(k.conkey) = 1))));
    IF others IS NOT NULL THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: column % of % has dependents an expansion cannot carry over: %',
                        colname, tbl, others
            USING ERRCODE = '0A000',
                  DETAIL = 'An expansion copies the column''s indexes, primary key, unique constraints, single-column foreign keys, NOT NULL, default and sequence; not check constraints, multi-column foreign keys, policies, statistics, generated columns or triggers that name it.',
                  HINT = 'Drop those objects first and re-create them after contract, or do this change by hand.';
    END IF;
END
$$;

-- The statements that copy the indexes on a column to its new column.
CREATE FUNCTION migrate_guard._expansion_index_copies(tbl regclass, attnum smallint, colname name, shadow name, p_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ix      record;
    def     text;
    at      integer;
    newname name;
    result  jsonb := '[]';
BEGIN
    FOR ix IN
        SELECT DISTINCT i.indexrelid, c.relname, i.indisunique, k.conname, k.contype
          FROM pg_index i
          JOIN pg_class c ON c.oid = i.indexrelid
          LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = tbl AND k.contype IN ('p', 'u', 'x')
         WHERE i.indrelid = tbl
           -- a key column, or a column its expressions or predicate use (recorded in pg_depend)
           AND (attnum = ANY (i.indkey::int2[])
                OR EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                              AND d.refclassid = 'pg_class'::regclass AND d.refobjid = tbl AND d.refobjsubid = attnum))
         ORDER BY c.relname
    LOOP
        IF ix.contype = 'x' THEN
            RAISE EXCEPTION 'migrate_guard.expand_column: exclusion constraint % uses column % of %', ix.conname, colname, tbl
                USING ERRCODE = '0A000', HINT = 'Drop it first and re-create it after contract.';
        END IF;
        def := pg_get_indexdef(ix.indexrelid);
        at := strpos(def, ' USING ');
        newname := migrate_guard._expansion_name(ix.relname, p_id);
        def := format('CREATE %sINDEX CONCURRENTLY IF NOT EXISTS %I ON %s%s',
                      CASE WHEN ix.indisunique THEN 'UNIQUE ' ELSE '' END, newname, tbl,
                      migrate_guard._replace_identifier(substr(def, at), colname, shadow));
        result := result || jsonb_build_object('old', ix.relname, 'new', newname, 'constraint', ix.conname,
                                               'contype', ix.contype, 'statement', def);
    END LOOP;
    RETURN result;
END
$$;

-- A foreign key's definition with other columns: `FOREIGN KEY (col) REFERENCES target(ref) …`.
CREATE FUNCTION migrate_guard._expansion_fk_definition(k oid, col name, target regclass, ref name)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
SELECT format('FOREIGN KEY (%I) REFERENCES %s (%I)', col, target, ref)
       || CASE c.confmatchtype WHEN 'f' THEN ' MATCH FULL' ELSE '' END
       || CASE c.confupdtype WHEN 'r' THEN ' ON UPDATE RESTRICT' WHEN 'c' THEN ' ON UPDATE CASCADE'
                             WHEN 'n' THEN ' ON UPDATE SET NULL' WHEN 'd' THEN ' ON UPDATE SET DEFAULT' ELSE '' END
       || CASE c.confdeltype WHEN 'r' THEN ' ON DELETE RESTRICT' WHEN 'c' THEN ' ON DELETE CASCADE'
                             WHEN 'n' THEN ' ON DELETE SET NULL' WHEN 'd' THEN ' ON DELETE SET DEFAULT' ELSE '' END
       || CASE WHEN c.condeferrable AND c.condeferred THEN ' DEFERRABLE INITIALLY DEFERRED'
               WHEN c.condeferrable THEN ' DEFERRABLE' ELSE '' END
FROM pg_constraint c WHERE c.oid = k
$$;

-- Adds the new column of one expanded column: the column itself, the CHECK that will prove NOT
-- NULL, the trigger that keeps it in step, and what contract needs to know.
CREATE FUNCTION migrate_guard._expansion_add_column(
    p_id bigint, p_ord integer, tbl regclass, col name, shadow name, final_name name, p_new_type text,
    forward_expr text, reverse_expr text, bidirectional boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a          record;
    schema     name;
    relname    name;
    fn         text;
    trg        name := left('mg_expansion_' || p_id || '_' || col, 63);
    chk        name;
    canonical  text;
    fwd_row    text;
    rev_row    text;
    body       text;
    seq        text;
    indexes    jsonb;
BEGIN
    SELECT t.attnum, t.attnotnull, t.attidentity, t.attgenerated, format_type(t.atttypid, t.atttypmod) AS typ,
           t.attcollation, ty.typcollation,
           (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE d.adrelid = t.attrelid AND d.adnum = t.attnum) AS def
      INTO a FROM pg_attribute t JOIN pg_type ty ON ty.oid = t.atttypid
     WHERE t.attrelid = tbl AND t.attname = col AND t.attnum > 0 AND NOT t.attisdropped;
    IF a.attgenerated <> '' THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: column % of % is a generated column', col, tbl
            USING ERRCODE = '0A000', HINT = 'Change its expression with ALTER TABLE … ALTER COLUMN … SET EXPRESSION (PostgreSQL 17+), or by hand.';
    END IF;
    PERFORM migrate_guard._expansion_check_dependents(tbl, a.attnum, col);
    SELECT n.nspname, c.relname INTO schema, relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;

    -- The new column: no default (a client's INSERT leaves it NULL, and the trigger fills it),
    -- so adding it is instant; the old column's collation when the type stays.
    PERFORM migrate_guard._as_caller(format('ALTER TABLE %s ADD COLUMN %I %s%s', tbl, shadow, p_new_type,
                   CASE WHEN p_new_type = a.typ AND a.attcollation <> 0 AND a.attcollation <> a.typcollation
                        THEN (SELECT format(' COLLATE %I.%I', n.nspname, c.collname) FROM pg_collation c
                                JOIN pg_namespace n ON n.oid = c.collnamespace WHERE c.oid = a.attcollation)
                        ELSE '' END), true);
    SELECT format_type(t.atttypid, t.atttypmod) INTO canonical FROM pg_attribute t
     WHERE t.attrelid = tbl AND t.attname = shadow;

    IF a.attnotnull THEN
        chk := left(relname || '_' || shadow, 63 - length('_mg_not_null')) || '_mg_not_null';
        PERFORM migrate_guard._as_caller(format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL) NOT VALID', tbl, chk, shadow), true);
    END IF;

    -- Expressions over the row a trigger sees: a cast of a column, or the caller's expression
    -- evaluated over the row's columns.
    fwd_row := CASE WHEN forward_expr IS NULL THEN format('NEW.%I::%s', col, canonical)
                    ELSE format('(SELECT (%s)::%s FROM (SELECT (NEW).*) AS mg_row)', forward_expr, canonical) END;
    rev_row := CASE WHEN reverse_expr IS NULL THEN format('NEW.%I::%s', shadow, a.typ)
                    ELSE format('(SELECT (%s)::%s FROM (SELECT (NEW).*) AS mg_row)', reverse_expr, a.typ) END;
    IF bidirectional THEN
        -- Clients of both versions write: an INSERT that gives the new column sets the old one
        -- from it; otherwise the new one follows the old. An UPDATE that changes one side
        -- changes the other (a backfill's update of the new column, already in step, does not);
        -- any update fills the new column of a row the backfill has not reached.
        body := format($b$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.%2$I IS NOT NULL THEN
            NEW.%1$I := %4$s;
        ELSE
            NEW.%2$I := %3$s;
        END IF;
    ELSIF NEW.%2$I IS DISTINCT FROM OLD.%2$I THEN
        IF NEW.%2$I IS DISTINCT FROM %3$s THEN
            NEW.%1$I := %4$s;
        END IF;
    ELSIF NEW.%1$I IS DISTINCT FROM OLD.%1$I OR (NEW.%2$I IS NULL AND NEW.%1$I IS NOT NULL) THEN
        NEW.%2$I := %3$s;
    END IF;
    RETURN NEW;
END$b$, col, shadow, fwd_row, rev_row);
    ELSE
        -- Only the old column is written by clients: the new one follows it (and is filled by
        -- any update of a row the backfill has not reached).
        body := format($b$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.%2$I := %3$s;
    ELSIF NEW.%1$I IS DISTINCT FROM OLD.%1$I OR NEW.%2$I IS DISTINCT FROM OLD.%2$I
          OR (NEW.%2$I IS NULL AND NEW.%1$I IS NOT NULL) THEN
        NEW.%2$I := %3$s;
    END IF;
    RETURN NEW;
END$b$, col, shadow, fwd_row);
    END IF;
    fn := format('%I.%I', schema, left(relname || '_mg_expansion_' || p_id || '_' || p_ord, 63));
    PERFORM migrate_guard._as_caller(format('CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS %L',
                   fn, body), true);
    PERFORM migrate_guard._as_caller(format('COMMENT ON FUNCTION %s() IS %L', fn,
                   format('migrate_guard: keeps %s.%s and %s in step (expansion %s); dropped by contract or abort',
                          tbl, col, shadow, p_id)), true);
    -- Every UPDATE, not only those naming the columns: a row not backfilled yet gets its new
    -- column filled by any update (the NOT VALID check on the new column applies to new row
    -- versions, and would refuse it).
    PERFORM migrate_guard._as_caller(format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION %s()',
                   trg, tbl, fn), true);

    -- A serial column's sequence (owned by the column, drawn by its default) moves to the new
    -- column at contract; an identity column's sequence is re-created there.
    SELECT format('%I.%I', sn.nspname, s.relname) INTO seq FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
      JOIN pg_namespace sn ON sn.oid = s.relnamespace
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = tbl
       AND d.refobjsubid = a.attnum AND d.deptype IN ('a', 'i')
     LIMIT 1;
    indexes := migrate_guard._expansion_index_copies(tbl, a.attnum, col, shadow, p_id);
    INSERT INTO migrate_guard.expansion_columns
        (expansion_id, ord, table_oid, table_name, column_name, shadow_name, final_name, old_type, new_type,
         set_clause, where_clause, function_name, trigger_name, not_null_check, default_expr, identity,
         sequence_name, comment, indexes)
    VALUES (p_id, p_ord, tbl, tbl::text, col, shadow, final_name, a.typ, canonical,
            format('%I = (%s)::%s', shadow, coalesce(forward_expr, quote_ident(col)), canonical),
            format('%I IS DISTINCT FROM (%s)::%s', shadow, coalesce(forward_expr, quote_ident(col)), canonical),
            fn, trg, chk, CASE WHEN a.attidentity = '' THEN a.def END, nullif(a.attidentity, ''), seq,
            col_description(tbl, a.attnum), indexes);
END
$$;

-- The entry point (see src/privilege.rs) and its body.
CREATE FUNCTION migrate_guard.expand_column(
    tbl regclass, col name, new_name name DEFAULT NULL, new_type text DEFAULT NULL,
    using_expr text DEFAULT NULL, reverse_expr text DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'migrate_guard_entry';
COMMENT ON FUNCTION migrate_guard.expand_column(regclass, name, name, text, text, text) IS
    'migrate_guard: expand a column (rename, type change): add the new column and keep both in step; returns the expansion id';

CREATE FUNCTION migrate_guard._expand_column(
    tbl regclass, col name, new_name name, new_type text, using_expr text, reverse_expr text)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    a          record;
    tables     oid[];
    exp_id     bigint;
    other      bigint;
    target     text;
    shadow     name;
    kind       text;
    statements text[];
    fk         record;
    n_cols     integer := 1;
    own_fks    jsonb := '[]';
    err_state  text;
    err_msg    text;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: tbl and col are required' USING ERRCODE = '22004';
    END IF;
    PERFORM migrate_guard._expansion_check_table(tbl, 'expand_column');
    SELECT t.attnum, format_type(t.atttypid, t.atttypmod) AS typ INTO a FROM pg_catalog.pg_attribute t
     WHERE t.attrelid = tbl AND t.attname = col AND t.attnum > 0 AND NOT t.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: column "%" of relation % does not exist', col, tbl
            USING ERRCODE = '42703';
    END IF;
    IF new_name IS NULL AND new_type IS NULL THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: nothing to change'
            USING ERRCODE = '22023', HINT = 'Give new_name => …, new_type => …, or both.';
    END IF;
    IF new_name = col THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: column % is already named %', col, new_name USING ERRCODE = '22023';
    END IF;
    IF new_name IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute t WHERE t.attrelid = tbl
                                           AND t.attname = new_name AND NOT t.attisdropped) THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: column "%" of relation % already exists', new_name, tbl
            USING ERRCODE = '42701';
    END IF;
    other := migrate_guard._expansion_in_progress(tbl, NULL);
    IF other IS NOT NULL THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: % is already being changed by expansion %', tbl, other
            USING ERRCODE = '55006',
                  HINT = format('Finish it first: SELECT migrate_guard.contract(%s); or undo it: SELECT migrate_guard.abort_expansion(%s);', other, other);
    END IF;
    -- The new type: a type name with its modifiers, nothing else (it is spliced into DDL).
    IF new_type IS NOT NULL THEN
        IF new_type ~ '[;]|--|/\*' THEN
            RAISE EXCEPTION 'migrate_guard.expand_column: "%" is not a type name', new_type USING ERRCODE = '22023';
        END IF;
        BEGIN
            PERFORM migrate_guard._as_caller(format('SELECT NULL::%s', new_type), false);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT;
            RAISE EXCEPTION 'migrate_guard.expand_column: new_type "%": %', new_type, err_msg USING ERRCODE = err_state;
        END;
    END IF;
    target := coalesce(new_type, a.typ);
    -- The conversions, checked against the table (they are planned, not run).
    BEGIN
        PERFORM migrate_guard._as_caller(format('SELECT (%s)::%s FROM %s LIMIT 0', coalesce(using_expr, quote_ident(col)), target, tbl), false);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT;
        IF using_expr IS NULL THEN
            RAISE EXCEPTION 'migrate_guard.expand_column: column % of % (%) cannot be converted to %: %', col, tbl, a.typ, target, err_msg
                USING ERRCODE = err_state,
                      HINT = format('Say how: using_expr => %L (an expression over the table''s columns).', quote_ident(col) || '::text::' || target);
        END IF;
        RAISE EXCEPTION 'migrate_guard.expand_column: using_expr %: %', using_expr, err_msg USING ERRCODE = err_state;
    END;
    kind := CASE WHEN new_name IS NOT NULL AND new_type IS NOT NULL THEN 'rename column and change type'
                 WHEN new_name IS NOT NULL THEN 'rename column' ELSE 'change type' END;

    exp_id := migrate_guard._next_id('migrate_guard.expansion_registry'::regclass);
    INSERT INTO migrate_guard.expansion_registry
        (id, kind, table_oid, table_name, column_name, new_name, old_type, new_type, using_expr, reverse_expr,
         phase, created_by, created_at)
    OVERRIDING SYSTEM VALUE
    VALUES (exp_id, kind, tbl, tbl::text, col, new_name, a.typ, new_type, using_expr, reverse_expr,
            'expanding', migrate_guard._caller_name(), clock_timestamp());
    -- The table, and the tables whose foreign keys reference the column (expanded with it).
    tables := ARRAY[tbl::oid] || ARRAY(SELECT k.conrelid FROM pg_catalog.pg_constraint k
                                        WHERE k.confrelid = tbl AND k.contype = 'f' AND a.attnum = ANY (k.confkey));
    PERFORM migrate_guard._expansion_step(exp_id, tables);
    PERFORM migrate_guard._expansion_lock(tables, 'ACCESS EXCLUSIVE');

    shadow := coalesce(new_name, migrate_guard._expansion_name(col, exp_id));
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute t WHERE t.attrelid = tbl AND t.attname = shadow AND NOT t.attisdropped) THEN
        RAISE EXCEPTION 'migrate_guard.expand_column: column "%" of relation % already exists', shadow, tbl
            USING ERRCODE = '42701';
    END IF;
    PERFORM migrate_guard._expansion_add_column(exp_id, n_cols, tbl, col, shadow, coalesce(new_name, col), target,
                                                using_expr, reverse_expr, new_name IS NOT NULL);
    IF new_name IS NOT NULL THEN
        -- Clients of the new version write the new column: the way back must work too.
        BEGIN
            PERFORM migrate_guard._as_caller(format('SELECT (%s)::%s FROM %s LIMIT 0', coalesce(reverse_expr, quote_ident(new_name)), a.typ, tbl), false);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT;
            RAISE EXCEPTION 'migrate_guard.expand_column: values written to % (%) cannot be converted back to % (%): %',
                            new_name, target, col, a.typ, err_msg
                USING ERRCODE = err_state,
                      HINT = format('Say how: reverse_expr => %L (an expression over the table''s columns).', quote_ident(new_name) || '::text::' || a.typ);
        END;
    END IF;

    -- The column's own single-column foreign keys are re-created on the new column.
    FOR fk IN SELECT k.oid, k.conname, k.confrelid::regclass AS target,
                     (SELECT t.attname FROM pg_catalog.pg_attribute t WHERE t.attrelid = k.confrelid AND t.attnum = k.confkey[1]) AS ref
                FROM pg_catalog.pg_constraint k
               WHERE k.conrelid = tbl AND k.contype = 'f' AND k.conkey = ARRAY[a.attnum]
               ORDER BY k.conname LOOP
        own_fks := own_fks || jsonb_build_object('table', tbl::oid, 'references', fk.target::oid, 'table_name', tbl::text, 'constraint', fk.conname,
                                         'new_constraint', migrate_guard._expansion_name(fk.conname, exp_id),
                                         'definition', migrate_guard._expansion_fk_definition(fk.oid, shadow, fk.target, fk.ref));
    END LOOP;
    -- Foreign keys of other tables (or this one) that reference the column: they must reference
    -- the new column after contract. A referencing column of another type is expanded too.
    FOR fk IN SELECT k.oid, k.conname, k.conrelid::regclass AS child,
                     (SELECT t.attname FROM pg_catalog.pg_attribute t WHERE t.attrelid = k.conrelid AND t.attnum = k.conkey[1]) AS child_col,
                     (SELECT format_type(t.atttypid, t.atttypmod) FROM pg_catalog.pg_attribute t WHERE t.attrelid = k.conrelid AND t.attnum = k.conkey[1]) AS child_type
                FROM pg_catalog.pg_constraint k
               WHERE k.confrelid = tbl AND k.contype = 'f' AND a.attnum = ANY (k.confkey)
               ORDER BY k.conrelid::regclass::text, k.conname LOOP
        IF (SELECT cardinality(confkey) FROM pg_catalog.pg_constraint WHERE oid = fk.oid) <> 1 THEN
            RAISE EXCEPTION 'migrate_guard.expand_column: foreign key % of % references % with other columns', fk.conname, fk.child, tbl
                USING ERRCODE = '0A000', HINT = 'Multi-column foreign keys are not carried over: drop it first and re-create it after contract.';
        END IF;
        IF fk.child_type = target THEN
            own_fks := own_fks || jsonb_build_object('table', fk.child::oid, 'references', tbl::oid, 'table_name', fk.child::text, 'constraint', fk.conname,
                                             'new_constraint', migrate_guard._expansion_name(fk.conname, exp_id),
                                             'definition', migrate_guard._expansion_fk_definition(fk.oid, fk.child_col, tbl, shadow));
        ELSE
            PERFORM migrate_guard._expansion_check_table(fk.child, 'expand_column');
            other := migrate_guard._expansion_in_progress(fk.child, fk.child_col);
            IF other IS NOT NULL THEN
                RAISE EXCEPTION 'migrate_guard.expand_column: %.% (which references %) is already being changed by expansion %', fk.child, fk.child_col, tbl, other
                    USING ERRCODE = '55006';
            END IF;
            n_cols := n_cols + 1;
            PERFORM migrate_guard._expansion_add_column(exp_id, n_cols, fk.child, fk.child_col,
                                                        migrate_guard._expansion_name(fk.child_col, exp_id),
                                                        fk.child_col, target, NULL, NULL, false);
            UPDATE migrate_guard.expansion_columns c
               SET fks = jsonb_build_array(jsonb_build_object(
                       'table', fk.child::oid, 'references', tbl::oid, 'table_name', fk.child::text, 'constraint', fk.conname,
                       'new_constraint', migrate_guard._expansion_name(fk.conname, exp_id),
                       'definition', migrate_guard._expansion_fk_definition(fk.oid, c.shadow_name, tbl, shadow)))
             WHERE c.expansion_id = exp_id AND c.ord = n_cols;
        END IF;
    END LOOP;
    UPDATE migrate_guard.expansion_columns c SET fks = own_fks WHERE c.expansion_id = exp_id AND c.ord = 1;

    UPDATE migrate_guard.expansion_registry e SET phase = 'expanded' WHERE e.id = exp_id;
    SELECT coalesce(array_agg(i->>'statement' ORDER BY c.ord, i->>'new'), '{}') INTO statements
      FROM migrate_guard.expansion_columns c, jsonb_array_elements(c.indexes) i WHERE c.expansion_id = exp_id;
    RAISE NOTICE 'migrate_guard: expansion %: % of %: % added%', exp_id, kind, tbl, shadow,
                 CASE WHEN n_cols > 1 THEN format(' (and %s referencing column(s) of other tables)', n_cols - 1) ELSE '' END
        USING DETAIL = CASE WHEN new_name IS NOT NULL
                            THEN format('A trigger keeps %s and %s in step whichever one a client writes.', col, new_name)
                            ELSE format('A trigger keeps %s in step with %s; contract swaps it in under the name %s.', shadow, col, col) END,
              HINT = CASE WHEN cardinality(statements) > 0
                          THEN 'Next, outside a transaction block (CREATE INDEX CONCURRENTLY cannot run in a function): '
                               || array_to_string(statements, '; ') || '; then '
                          ELSE 'Next: ' END
                     || format('CALL migrate_guard.backfill_expansion(%s); then, once every reader uses the new column, SELECT migrate_guard.contract(%s);', exp_id, exp_id);
    RETURN exp_id;
END
$fn$;

-- The expansion row the caller may run, or an error that says why not. Its steps run only as the
-- role that started it: they run that role's expressions (using_expr), which must not run with
-- anybody else's rights, a superuser's least of all.
CREATE FUNCTION migrate_guard._expansion_get(p_id bigint, what text)
RETURNS migrate_guard.expansion_registry
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e migrate_guard.expansion_registry;
BEGIN
    SELECT * INTO e FROM migrate_guard.expansion_registry r WHERE r.id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migrate_guard.%: there is no expansion %', what, coalesce(p_id::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'SELECT * FROM migrate_guard.expansions shows them.';
    END IF;
    IF e.created_by <> migrate_guard._caller_name() THEN
        RAISE EXCEPTION 'migrate_guard.%: expansion % was started by role %, and only that role may run its steps', what, p_id, e.created_by
            USING ERRCODE = '42501',
                  DETAIL = 'A step runs what the role that started it wrote (its using_expr), with the rights of whoever runs it.',
                  HINT = format('Run it as that role: SET ROLE %I; then the same call.', e.created_by);
    END IF;
    IF e.phase <> 'expanded' THEN
        RAISE EXCEPTION 'migrate_guard.%: expansion % is %', what, p_id, e.phase
            USING ERRCODE = '55000';
    END IF;
    RETURN e;
END
$$;

-- The statements (CREATE INDEX CONCURRENTLY) of an expansion whose index is missing or invalid.
CREATE FUNCTION migrate_guard._expansion_pending_indexes(p_id bigint)
RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(array_agg(i->>'statement' ORDER BY c.ord, i->>'new'), '{}')
  FROM migrate_guard.expansion_columns c, jsonb_array_elements(c.indexes) i
 WHERE c.expansion_id = p_id
   AND NOT EXISTS (SELECT 1 FROM pg_class x JOIN pg_index ix ON ix.indexrelid = x.oid
                    WHERE x.relname = i->>'new' AND ix.indrelid = c.table_oid AND ix.indisvalid)
$$;

-- CALL migrate_guard.backfill_expansion(id, …) is a procedure written in Rust (src/expansion.rs):
-- it commits between batches, so it runs as the caller and calls these bodies, as the owner,
-- between its transactions.

-- The columns to backfill, in order; none (with a NOTICE) for a table rename.
CREATE FUNCTION migrate_guard._backfill_expansion_columns(p_id bigint)
RETURNS TABLE (ord integer, table_oid oid, set_clause text, where_clause text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e migrate_guard.expansion_registry;
BEGIN
    e := migrate_guard._expansion_get(p_id, 'backfill_expansion');
    IF e.kind = 'rename table' THEN
        RAISE NOTICE 'migrate_guard: expansion % renames a table: there is nothing to backfill', e.id
            USING HINT = format('Once no client uses the old name: SELECT migrate_guard.contract(%s);', e.id);
        RETURN;
    END IF;
    RETURN QUERY SELECT c.ord, c.table_oid, c.set_clause, c.where_clause
                   FROM migrate_guard.expansion_columns c WHERE c.expansion_id = e.id ORDER BY c.ord;
END
$$;

-- The next step after the rows of column p_ord (or, with p_ord NULL, of every column) are
-- backfilled, run in the caller's current transaction, which the procedure commits after it:
-- 'step' (one was run), 'done' (nothing is left), or 'pending' (the foreign keys need indexes
-- first: the procedure commits, then raises p_message).
CREATE FUNCTION migrate_guard._backfill_expansion_next(p_id bigint, p_lock_ms text, p_ord integer,
                                                       OUT status text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e        migrate_guard.expansion_registry;
    c        migrate_guard.expansion_columns;
    fk       jsonb;
    old_fk   oid;
    fk_col   name;
    fk_ref   name;
    pending  text[];
BEGIN
    e := migrate_guard._expansion_get(p_id, 'backfill_expansion');
    IF p_ord IS NOT NULL THEN
        SELECT * INTO c FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id AND x.ord = p_ord;
        IF c.not_null_check IS NOT NULL
           AND NOT (SELECT k.convalidated FROM pg_constraint k
                     WHERE k.conrelid = c.table_oid AND k.conname = c.not_null_check) THEN
            -- Scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on.
            PERFORM set_config('lock_timeout', p_lock_ms, true);
            PERFORM migrate_guard._expansion_step(e.id, ARRAY[c.table_oid]);
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.table_oid::regclass, c.not_null_check), true);
            RAISE NOTICE 'migrate_guard: expansion %: %.% proved NOT NULL (constraint % validated)',
                         e.id, c.table_name, c.shadow_name, c.not_null_check;
            status := 'step';
            RETURN;
        END IF;
        status := 'done';
        RETURN;
    END IF;
    -- Foreign keys on the new columns need the unique indexes they reference.
    IF EXISTS (SELECT 1 FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id AND x.fks <> '[]') THEN
        pending := migrate_guard._expansion_pending_indexes(e.id);
        IF cardinality(pending) > 0 THEN
            UPDATE migrate_guard.expansion_registry r SET backfilled_at = clock_timestamp() WHERE r.id = e.id;
            status := 'pending';
            message := format('migrate_guard: expansion %s: the rows are backfilled; the foreign keys on the new columns need their indexes first', e.id);
            detail := 'Missing or invalid: ' || array_to_string(pending, '; ');
            hint := format('Run those statements (outside a transaction block), then CALL migrate_guard.backfill_expansion(%s) again.', e.id);
            RETURN;
        END IF;
        FOR c IN SELECT * FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id ORDER BY x.ord LOOP
            FOR fk IN SELECT * FROM jsonb_array_elements(c.fks) LOOP
                IF NOT EXISTS (SELECT 1 FROM pg_constraint k
                                WHERE k.conrelid = (fk->>'table')::oid AND k.conname = fk->>'new_constraint') THEN
                    -- Its definition is read again from the foreign key it replaces, with the
                    -- expansion's new columns in place of the ones they replace.
                    SELECT k.oid, ca.attname, ra.attname INTO old_fk, fk_col, fk_ref
                      FROM pg_constraint k
                      JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = k.conkey[1]
                      JOIN pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]
                     WHERE k.conrelid = (fk->>'table')::oid AND k.conname = fk->>'constraint' AND k.contype = 'f';
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'migrate_guard.backfill_expansion: foreign key % of % is gone', fk->>'constraint', (fk->>'table')::oid::regclass
                            USING ERRCODE = '55000', HINT = format('Undo the expansion: SELECT migrate_guard.abort_expansion(%s);', e.id);
                    END IF;
                    fk_col := coalesce((SELECT x.shadow_name FROM migrate_guard.expansion_columns x
                                         WHERE x.expansion_id = e.id AND x.table_oid = (fk->>'table')::oid
                                           AND x.column_name = fk_col), fk_col);
                    fk_ref := coalesce((SELECT x.shadow_name FROM migrate_guard.expansion_columns x
                                         WHERE x.expansion_id = e.id AND x.table_oid = (fk->>'references')::oid
                                           AND x.column_name = fk_ref), fk_ref);
                    PERFORM set_config('lock_timeout', p_lock_ms, true);
                    PERFORM migrate_guard._expansion_step(e.id, ARRAY[(fk->>'table')::oid, (fk->>'references')::oid]);
                    -- Both tables, the referencing one and the referenced one.
                    PERFORM migrate_guard._expansion_lock(ARRAY[(fk->>'table')::oid, (fk->>'references')::oid],
                                                          'SHARE ROW EXCLUSIVE');
                    PERFORM migrate_guard._as_caller(format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID',
                                   (fk->>'table')::oid::regclass, fk->>'new_constraint',
                                   migrate_guard._expansion_fk_definition(old_fk, fk_col,
                                                                          (fk->>'references')::oid::regclass, fk_ref)), true);
                    status := 'step';
                    RETURN;
                END IF;
                IF NOT (SELECT k.convalidated FROM pg_constraint k
                         WHERE k.conrelid = (fk->>'table')::oid AND k.conname = fk->>'new_constraint') THEN
                    PERFORM set_config('lock_timeout', p_lock_ms, true);
                    PERFORM migrate_guard._expansion_step(e.id, ARRAY[(fk->>'table')::oid, (fk->>'references')::oid]);
                    PERFORM migrate_guard._as_caller(format('ALTER TABLE %s VALIDATE CONSTRAINT %I',
                                   (fk->>'table')::oid::regclass, fk->>'new_constraint'), true);
                    RAISE NOTICE 'migrate_guard: expansion %: foreign key % on % validated', e.id, fk->>'new_constraint', fk->>'table_name';
                    status := 'step';
                    RETURN;
                END IF;
            END LOOP;
        END LOOP;
    END IF;
    UPDATE migrate_guard.expansion_registry r SET backfilled_at = clock_timestamp() WHERE r.id = e.id;
    pending := migrate_guard._expansion_pending_indexes(e.id);
    RAISE NOTICE 'migrate_guard: expansion % backfilled', e.id
        USING HINT = CASE WHEN cardinality(pending) > 0
                          THEN 'Before contract, build the indexes: ' || array_to_string(pending, '; ') || '; then '
                          ELSE 'Next, ' END
                     || format('once every reader uses the new column: SELECT migrate_guard.contract(%s);', e.id);
    status := 'done';
END
$$;

-- What contract and abort_expansion act on, read again from the catalog rather than from the
-- registry's text: the view standing in for a renamed table's old name (one that reads that
-- table), and the function of an expansion's trigger.
CREATE FUNCTION migrate_guard._expansion_old_name_view(e migrate_guard.expansion_registry)
RETURNS regclass
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
SELECT v.oid::regclass
  FROM pg_class v JOIN pg_namespace n ON n.oid = v.relnamespace
 WHERE v.relkind = 'v'
   AND n.nspname = (parse_ident(e.table_name))[1]
   AND v.relname = (parse_ident(e.table_name))[cardinality(parse_ident(e.table_name))]
   AND EXISTS (SELECT 1 FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                WHERE r.ev_class = v.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjid = e.table_oid)
$$;

CREATE FUNCTION migrate_guard._expansion_trigger_function(tbl oid, trigger_name name)
RETURNS regprocedure
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$ SELECT t.tgfoid::regprocedure FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = trigger_name $$;

CREATE FUNCTION migrate_guard.contract(id bigint, force boolean DEFAULT false)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'migrate_guard_entry';

CREATE FUNCTION migrate_guard._contract(id bigint, force boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    e        migrate_guard.expansion_registry;
    c        migrate_guard.expansion_columns;
    fk       jsonb;
    ix       jsonb;
    pending  text[];
    missing  text;
    tables   text;
    view     regclass;
    fn       regprocedure;
    attnum   smallint;
    def      text;
    note     text;
    seq      oid;
    seq_name text;
    seq_kind "char";
    start_at bigint;
    seq_now  record;
    in_use   text;
BEGIN
    e := migrate_guard._expansion_get(id, 'contract');
    -- Usage evidence (when preloaded): a client that used the old name within the last
    -- min(usage_window, 5 minutes) still needs it; force => true contracts anyway, and the
    -- registry keeps what it overrode (forced_usage).
    SELECT string_agg(format('%s%s: last used %s (%s reads, %s writes), recently by %s',
                             u.relation, coalesce('.' || quote_ident(u.column_name), ''),
                             to_char(greatest(u.last_read, u.last_write) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
                             u.reads, u.writes, coalesce(array_to_string(u.recent_users, ', '), 'unknown clients')), '; ')
      INTO in_use
      FROM migrate_guard.usage u
     WHERE greatest(u.last_read, u.last_write) > clock_timestamp()
               - least(current_setting('migrate_guard.usage_window')::interval, interval '5 minutes')
       AND ((e.kind = 'rename table' AND u.relation::oid = migrate_guard._expansion_old_name_view(e)::oid AND u.column_name IS NULL)
            OR (e.kind <> 'rename table' AND EXISTS (
                   SELECT 1 FROM migrate_guard.expansion_columns x
                    WHERE x.expansion_id = e.id AND x.shadow_name = x.final_name
                      AND u.relation::oid = x.table_oid AND u.column_name = x.column_name)));
    IF in_use IS NOT NULL THEN
        IF force IS NOT TRUE THEN
            RAISE EXCEPTION 'migrate_guard.contract: expansion %: clients still use the old name', e.id
                USING ERRCODE = '55000',
                      DETAIL = in_use || '.',
                      HINT = format('Deploy those clients on the new name first and contract once they stopped; to contract anyway: SELECT migrate_guard.contract(%s, force => true);', e.id);
        END IF;
        RAISE WARNING 'migrate_guard.contract: expansion %: forced while clients still use the old name', e.id
            USING DETAIL = in_use || '.',
                  HINT = 'Those clients fail from now on; migrate_guard.expansion_registry.forced_usage keeps this evidence.';
        UPDATE migrate_guard.expansion_registry r SET forced_usage = in_use WHERE r.id = e.id;
    END IF;
    IF e.kind = 'rename table' THEN
        view := migrate_guard._expansion_old_name_view(e);
        PERFORM migrate_guard._expansion_step(e.id, ARRAY[e.table_oid, view::oid]);
        IF view IS NOT NULL THEN
            PERFORM migrate_guard._as_caller(format('DROP VIEW %s', view), true);
        END IF;
        UPDATE migrate_guard.expansion_registry r
           SET phase = 'contracted', finished_by = migrate_guard._caller_name(), finished_at = clock_timestamp() WHERE r.id = e.id;
        RAISE NOTICE 'migrate_guard: expansion % contracted: the view % is dropped', e.id, e.table_name;
        RETURN;
    END IF;
    IF e.backfilled_at IS NULL THEN
        RAISE EXCEPTION 'migrate_guard.contract: expansion % is not backfilled yet', e.id
            USING ERRCODE = '55000',
                  DETAIL = 'Rows written before the expansion have no value in the new column.',
                  HINT = format('CALL migrate_guard.backfill_expansion(%s); first.', e.id);
    END IF;
    pending := migrate_guard._expansion_pending_indexes(e.id);
    IF cardinality(pending) > 0 THEN
        RAISE EXCEPTION 'migrate_guard.contract: expansion % needs its indexes on the new column first', e.id
            USING ERRCODE = '55000',
                  DETAIL = 'Missing or invalid: ' || array_to_string(pending, '; '),
                  HINT = 'CREATE INDEX CONCURRENTLY cannot run inside a function: run those statements outside a transaction block, then contract again (DROP INDEX CONCURRENTLY an invalid one first).';
    END IF;
    SELECT string_agg(f->>'new_constraint', ', ') INTO missing
      FROM migrate_guard.expansion_columns x, jsonb_array_elements(x.fks) f
     WHERE x.expansion_id = e.id
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = (f->>'table')::oid
                          AND k.conname = f->>'new_constraint' AND k.convalidated);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'migrate_guard.contract: expansion %: foreign keys % are not in place and validated', e.id, missing
            USING ERRCODE = '55000', HINT = format('CALL migrate_guard.backfill_expansion(%s); first.', e.id);
    END IF;
    SELECT string_agg(DISTINCT x.table_name || '.' || x.not_null_check, ', ') INTO missing
      FROM migrate_guard.expansion_columns x
     WHERE x.expansion_id = e.id AND x.not_null_check IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = x.table_oid
                          AND k.conname = x.not_null_check AND k.convalidated);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'migrate_guard.contract: expansion %: NOT NULL of the new column is not proved yet (%)', e.id, missing
            USING ERRCODE = '55000', HINT = format('CALL migrate_guard.backfill_expansion(%s); first.', e.id);
    END IF;

    -- One short transaction: every table locked up front (within lock_timeout), then the swap.
    PERFORM migrate_guard._expansion_step(e.id, migrate_guard._expansion_tables(e.id));
    SELECT string_agg(DISTINCT x.table_oid::regclass::text, ', ') INTO tables
      FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id;
    PERFORM migrate_guard._expansion_lock(ARRAY(SELECT x.table_oid FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id),
                                          'ACCESS EXCLUSIVE');
    -- The old foreign keys go first: they hang on the old columns and the old unique index.
    FOR c IN SELECT * FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id ORDER BY x.ord LOOP
        FOR fk IN SELECT * FROM jsonb_array_elements(c.fks) LOOP
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s DROP CONSTRAINT %I', (fk->>'table')::oid::regclass, fk->>'constraint'), true);
        END LOOP;
    END LOOP;
    FOR c IN SELECT * FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id ORDER BY x.ord DESC LOOP
        -- What the old column carries over, read from the catalog before it is dropped: its
        -- default, comment and sequence (a serial's, moved; an identity's, re-created).
        SELECT a.attnum, pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum)
          INTO attnum, def, note
          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = c.table_oid AND a.attname = c.column_name AND NOT a.attisdropped;
        seq := NULL;
        SELECT s.oid, format('%I.%I', sn.nspname, s.relname), d.deptype INTO seq, seq_name, seq_kind
          FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
          JOIN pg_namespace sn ON sn.oid = s.relnamespace
         WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.table_oid
           AND d.refobjsubid = attnum AND d.deptype IN ('a', 'i')
         LIMIT 1;
        fn := migrate_guard._expansion_trigger_function(c.table_oid, c.trigger_name);
        PERFORM migrate_guard._as_caller(format('DROP TRIGGER %I ON %s', c.trigger_name, c.table_oid::regclass), true);
        IF fn IS NOT NULL THEN
            PERFORM migrate_guard._as_caller(format('DROP FUNCTION %s', fn), true);
        END IF;
        IF c.identity IS NOT NULL AND seq IS NOT NULL THEN
            SELECT q.seqincrement AS increment_by, q.seqcache AS cache_size, q.seqcycle AS cycle, q.seqstart,
                   pg_sequence_last_value(seq) AS last_value
              INTO seq_now FROM pg_sequence q WHERE q.seqrelid = seq;
            start_at := CASE WHEN seq_now.last_value IS NULL THEN seq_now.seqstart
                             ELSE seq_now.last_value + seq_now.increment_by END;
        ELSIF seq IS NOT NULL AND seq_kind = 'a' THEN
            PERFORM migrate_guard._as_caller(format('ALTER SEQUENCE %s OWNED BY %s.%I', seq::regclass, c.table_oid::regclass, c.shadow_name), true);
            IF c.new_type IN ('bigint', 'integer', 'smallint') THEN
                PERFORM migrate_guard._as_caller(format('ALTER SEQUENCE %s AS %s', seq::regclass, c.new_type), true);
            END IF;
        END IF;
        PERFORM migrate_guard._as_caller(format('ALTER TABLE %s DROP COLUMN %I', c.table_oid::regclass, c.column_name), true);
        IF c.shadow_name <> c.final_name THEN
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s RENAME COLUMN %I TO %I', c.table_oid::regclass, c.shadow_name, c.final_name), true);
        END IF;
        IF c.not_null_check IS NOT NULL THEN
            -- The validated CHECK proves it: no scan.
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', c.table_oid::regclass, c.final_name), true);
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s DROP CONSTRAINT %I', c.table_oid::regclass, c.not_null_check), true);
        END IF;
        IF def IS NOT NULL AND c.identity IS NULL THEN
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', c.table_oid::regclass, c.final_name, def), true);
        END IF;
        IF c.identity IS NOT NULL AND seq IS NOT NULL THEN
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s ALTER COLUMN %I ADD GENERATED %s AS IDENTITY (SEQUENCE NAME %s START WITH %s INCREMENT BY %s CACHE %s%s)',
                           c.table_oid::regclass, c.final_name,
                           CASE c.identity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END, seq_name,
                           start_at, seq_now.increment_by, seq_now.cache_size, CASE WHEN seq_now.cycle THEN ' CYCLE' ELSE '' END), true);
        END IF;
        IF note IS NOT NULL THEN
            PERFORM migrate_guard._as_caller(format('COMMENT ON COLUMN %s.%I IS %L', c.table_oid::regclass, c.final_name, note), true);
        END IF;
        FOR ix IN SELECT * FROM jsonb_array_elements(c.indexes) LOOP
            IF ix->>'contype' = 'p' THEN
                PERFORM migrate_guard._as_caller(format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I', c.table_oid::regclass, ix->>'constraint', ix->>'new'), true);
            ELSIF ix->>'contype' = 'u' THEN
                PERFORM migrate_guard._as_caller(format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE USING INDEX %I', c.table_oid::regclass, ix->>'constraint', ix->>'new'), true);
            ELSE
                PERFORM migrate_guard._as_caller(format('ALTER INDEX %I.%I RENAME TO %I',
                               (SELECT n.nspname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = c.table_oid),
                               ix->>'new', ix->>'old'), true);
            END IF;
        END LOOP;
    END LOOP;
    FOR c IN SELECT * FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id ORDER BY x.ord LOOP
        FOR fk IN SELECT * FROM jsonb_array_elements(c.fks) LOOP
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', (fk->>'table')::oid::regclass,
                           fk->>'new_constraint', fk->>'constraint'), true);
        END LOOP;
    END LOOP;
    UPDATE migrate_guard.expansion_registry r
       SET phase = 'contracted', finished_by = migrate_guard._caller_name(), finished_at = clock_timestamp() WHERE r.id = e.id;
    RAISE NOTICE 'migrate_guard: expansion % contracted: %', e.id,
                 CASE e.kind WHEN 'change type' THEN format('%s.%s is now %s', e.table_name, e.column_name, e.new_type)
                             ELSE format('%s.%s is now %s', e.table_name, e.column_name, e.new_name) END
        USING HINT = format('The planner has no statistics for the new column yet: ANALYZE %s;', tables);
END
$fn$;
COMMENT ON FUNCTION migrate_guard.contract(bigint, boolean) IS
    'migrate_guard: finish an expansion in one short transaction: swap in the new column (or drop the old-name view)';

CREATE FUNCTION migrate_guard.abort_expansion(id bigint)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'migrate_guard_entry';

CREATE FUNCTION migrate_guard._abort_expansion(id bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    e       migrate_guard.expansion_registry;
    c       migrate_guard.expansion_columns;
    fk      jsonb;
    ix      jsonb;
    schema  name;
    view    regclass;
    fn      regprocedure;
BEGIN
    e := migrate_guard._expansion_get(id, 'abort_expansion');
    IF e.kind = 'rename table' THEN
        view := migrate_guard._expansion_old_name_view(e);
        PERFORM migrate_guard._expansion_step(e.id, ARRAY[e.table_oid, view::oid]);
        PERFORM migrate_guard._expansion_lock(ARRAY[e.table_oid], 'ACCESS EXCLUSIVE');
        IF view IS NOT NULL THEN
            PERFORM migrate_guard._as_caller(format('DROP VIEW %s', view), true);
        END IF;
        PERFORM migrate_guard._as_caller(format('ALTER TABLE %s RENAME TO %I', e.table_oid::regclass, (parse_ident(e.table_name))[cardinality(parse_ident(e.table_name))]), true);
    ELSE
        PERFORM migrate_guard._expansion_step(e.id, migrate_guard._expansion_tables(e.id));
        PERFORM migrate_guard._expansion_lock(ARRAY(SELECT x.table_oid FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id),
                                              'ACCESS EXCLUSIVE');
        FOR c IN SELECT * FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id ORDER BY x.ord LOOP
            FOR fk IN SELECT * FROM jsonb_array_elements(c.fks) LOOP
                PERFORM migrate_guard._as_caller(format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', (fk->>'table')::oid::regclass, fk->>'new_constraint'), true);
            END LOOP;
        END LOOP;
        FOR c IN SELECT * FROM migrate_guard.expansion_columns x WHERE x.expansion_id = e.id ORDER BY x.ord DESC LOOP
            SELECT n.nspname INTO schema FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = c.table_oid;
            fn := migrate_guard._expansion_trigger_function(c.table_oid, c.trigger_name);
            PERFORM migrate_guard._as_caller(format('DROP TRIGGER IF EXISTS %I ON %s', c.trigger_name, c.table_oid::regclass), true);
            IF fn IS NOT NULL THEN
                PERFORM migrate_guard._as_caller(format('DROP FUNCTION %s', fn), true);
            END IF;
            FOR ix IN SELECT * FROM jsonb_array_elements(c.indexes) LOOP
                PERFORM migrate_guard._as_caller(format('DROP INDEX IF EXISTS %I.%I', schema, ix->>'new'), true);
            END LOOP;
            PERFORM migrate_guard._as_caller(format('ALTER TABLE %s DROP COLUMN %I', c.table_oid::regclass, c.shadow_name), true);
            -- Its unfinished backfill job must not be resumed by a later expansion that happens
            -- to have the same clauses (a rename to the same name): its position would skip rows.
            UPDATE migrate_guard.backfills b
               SET status = 'abandoned', finished_at = clock_timestamp(), updated_at = clock_timestamp()
             WHERE b.table_oid = c.table_oid AND b.set_clause = c.set_clause AND b.where_clause = c.where_clause
               AND b.status IN ('running', 'failed', 'cancelled');
        END LOOP;
    END IF;
    UPDATE migrate_guard.expansion_registry r
       SET phase = 'aborted', finished_by = migrate_guard._caller_name(), finished_at = clock_timestamp() WHERE r.id = e.id;
    RAISE NOTICE 'migrate_guard: expansion % aborted: % is as it was', e.id, e.table_name;
END
$fn$;
COMMENT ON FUNCTION migrate_guard.abort_expansion(bigint) IS
    'migrate_guard: undo an expansion that was not contracted (drop the new column, its trigger and indexes; rename a table back)';

CREATE FUNCTION migrate_guard.expand_rename_table(tbl regclass, new_name name)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'migrate_guard_entry';

CREATE FUNCTION migrate_guard._expand_rename_table(tbl regclass, new_name name)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    exp_id  bigint;
    other   bigint;
    schema  name;
    old     name;
    acl     record;
BEGIN
    IF tbl IS NULL OR new_name IS NULL THEN
        RAISE EXCEPTION 'migrate_guard.expand_rename_table: tbl and new_name are required' USING ERRCODE = '22004';
    END IF;
    PERFORM migrate_guard._expansion_check_table(tbl, 'expand_rename_table');
    SELECT n.nspname, c.relname INTO schema, old FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    IF new_name = old THEN
        RAISE EXCEPTION 'migrate_guard.expand_rename_table: % is already named %', tbl, new_name USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = schema AND c.relname = new_name) THEN
        RAISE EXCEPTION 'migrate_guard.expand_rename_table: relation "%" already exists in schema %', new_name, schema
            USING ERRCODE = '42P07';
    END IF;
    other := migrate_guard._expansion_in_progress(tbl, NULL);
    IF other IS NOT NULL THEN
        RAISE EXCEPTION 'migrate_guard.expand_rename_table: % is already being changed by expansion %', tbl, other
            USING ERRCODE = '55006';
    END IF;
    exp_id := migrate_guard._next_id('migrate_guard.expansion_registry'::regclass);
    INSERT INTO migrate_guard.expansion_registry (id, kind, table_oid, table_name, new_name, phase, created_by, created_at)
    OVERRIDING SYSTEM VALUE
    VALUES (exp_id, 'rename table', tbl, format('%I.%I', schema, old), new_name, 'expanding', migrate_guard._caller_name(), clock_timestamp());
    PERFORM migrate_guard._expansion_step(exp_id, ARRAY[tbl::oid]);
    PERFORM migrate_guard._expansion_lock(ARRAY[tbl::oid], 'ACCESS EXCLUSIVE');
    PERFORM migrate_guard._as_caller(format('ALTER TABLE %s RENAME TO %I', tbl, new_name), true);
    -- Under the old name, a view that clients of the old version read and write as before (a
    -- simple view is updatable). It checks privileges as the querying role where PostgreSQL
    -- can (15+), and has the table's grants.
    PERFORM migrate_guard._as_caller(format('CREATE VIEW %I.%I%s AS SELECT * FROM %I.%I', schema, old,
                   CASE WHEN current_setting('server_version_num')::int >= 150000 THEN ' WITH (security_invoker = true)' ELSE '' END,
                   schema, new_name), true);
    PERFORM migrate_guard._as_caller(format('COMMENT ON VIEW %I.%I IS %L', schema, old,
                   format('migrate_guard: %s under its old name while clients move (expansion %s); dropped by contract', new_name, exp_id)), true);
    FOR acl IN SELECT a.grantee, a.privilege_type, a.is_grantable
                 FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
                WHERE c.oid = tbl AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
                  AND a.grantee <> c.relowner LOOP
        PERFORM migrate_guard._as_caller(format('GRANT %s ON %I.%I TO %s%s', acl.privilege_type, schema, old,
                       CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(acl.grantee::regrole::text) END,
                       CASE WHEN acl.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), true);
    END LOOP;
    UPDATE migrate_guard.expansion_registry e SET phase = 'expanded' WHERE e.id = exp_id;
    RAISE NOTICE 'migrate_guard: expansion %: %.% renamed to %; the view %.% stands in for the old name', exp_id, schema, old, new_name, schema, old
        USING HINT = format('Once no client uses %s: SELECT migrate_guard.contract(%s);', old, exp_id);
    RETURN exp_id;
END
$fn$;
COMMENT ON FUNCTION migrate_guard.expand_rename_table(regclass, name) IS
    'migrate_guard: rename a table and leave an updatable view under the old name; returns the expansion id';

-- What is in progress: the caller's expansions (and those of roles it is a member of; all of
-- them for superusers), with their backfill and the next step.
CREATE FUNCTION migrate_guard.list_expansions()
RETURNS TABLE (id bigint, "table" text, kind text, old_name text, new_name text, old_type text, new_type text,
               phase text, backfill text, rows_backfilled bigint, pending_statements text[], next_step text,
               created_by name, created_at timestamptz, finished_by name, finished_at timestamptz)
LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'migrate_guard_entry';
COMMENT ON FUNCTION migrate_guard.list_expansions() IS
    'migrate_guard: your expansions (all of them for superusers) with their phase, backfill progress and next step';

CREATE FUNCTION migrate_guard._list_expansions()
RETURNS TABLE (id bigint, "table" text, kind text, old_name text, new_name text, old_type text, new_type text,
               phase text, backfill text, rows_backfilled bigint, pending_statements text[], next_step text,
               created_by name, created_at timestamptz, finished_by name, finished_at timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT e.id,
           e.table_name,
           e.kind,
           coalesce(e.column_name::text, e.table_name),
           e.new_name::text,
           e.old_type,
           e.new_type,
           e.phase,
           CASE WHEN e.kind = 'rename table' THEN 'not needed'
                WHEN e.backfilled_at IS NOT NULL THEN 'done'
                WHEN b.job_id IS NULL THEN 'not started'
                ELSE b.status || ' (' || b.done_percent || '%)' END,
           b.rows_updated,
           CASE WHEN e.phase = 'expanded' THEN migrate_guard._expansion_pending_indexes(e.id) END,
           CASE WHEN e.phase <> 'expanded' THEN NULL
                WHEN e.kind = 'rename table' THEN format('SELECT migrate_guard.contract(%s);', e.id)
                WHEN e.backfilled_at IS NULL THEN format('CALL migrate_guard.backfill_expansion(%s);', e.id)
                WHEN cardinality(migrate_guard._expansion_pending_indexes(e.id)) > 0 THEN 'run pending_statements'
                ELSE format('SELECT migrate_guard.contract(%s);', e.id) END,
           e.created_by,
           e.created_at,
           e.finished_by,
           e.finished_at
    FROM migrate_guard.expansion_registry e
    LEFT JOIN LATERAL (
        SELECT l.job_id, l.status, l.done_percent, l.rows_updated
          FROM migrate_guard.expansion_columns c
          JOIN migrate_guard._list_backfills() l
            ON l.set_clause = c.set_clause AND l.where_clause = c.where_clause
           AND l.started_at >= e.created_at
         WHERE c.expansion_id = e.id
         ORDER BY l.job_id DESC LIMIT 1
    ) b ON true
    WHERE pg_has_role(migrate_guard._caller(), e.created_by, 'MEMBER')
    ORDER BY e.id;
END
$$;

CREATE VIEW migrate_guard.expansions AS
SELECT * FROM migrate_guard.list_expansions();
COMMENT ON VIEW migrate_guard.expansions IS
    'migrate_guard: expansions (expand → migrate → contract) with their phase, backfill progress and next step';
GRANT SELECT ON migrate_guard.expansions TO PUBLIC;

-- The bodies and helpers run as the owner only (see the header).
REVOKE ALL ON FUNCTION
    migrate_guard._expansion_step(bigint, oid[]),
    migrate_guard._expansion_tables(bigint),
    migrate_guard._expansion_name(name, bigint),
    migrate_guard._expansion_lock(oid[], text),
    migrate_guard._expansion_check_table(regclass, text),
    migrate_guard._expansion_in_progress(oid, name),
    migrate_guard._expansion_check_dependents(regclass, smallint, name),
    migrate_guard._expansion_index_copies(regclass, smallint, name, name, bigint),
    migrate_guard._expansion_fk_definition(oid, name, regclass, name),
    migrate_guard._expansion_add_column(bigint, integer, regclass, name, name, name, text, text, text, boolean),
    migrate_guard._expand_column(regclass, name, name, text, text, text),
    migrate_guard._expansion_get(bigint, text),
    migrate_guard._expansion_pending_indexes(bigint),
    migrate_guard._backfill_expansion_columns(bigint),
    migrate_guard._backfill_expansion_next(bigint, text, integer),
    migrate_guard._expansion_old_name_view(migrate_guard.expansion_registry),
    migrate_guard._expansion_trigger_function(oid, name),
    migrate_guard._contract(bigint, boolean),
    migrate_guard._abort_expansion(bigint),
    migrate_guard._expand_rename_table(regclass, name),
    migrate_guard._list_expansions()
FROM PUBLIC;
