import { ident, literal, type MediaDefinition, type Pool } from '@freshet/core';

/**
 * A prototype of a proposed core change, without touching core: an event trigger in the scratch
 * API database adds a btree on the key to every `temp_import_*` table the moment preflight
 * creates it, so each chunk step's range predicate becomes an index range scan instead of a scan
 * of the whole temp table. Only for the benchmark's own database; removed right after.
 */
export async function installKeyIndexTrigger(api: Pool, def: MediaDefinition): Promise<void> {
  await api.query(`
    CREATE OR REPLACE FUNCTION bench_key_index() RETURNS event_trigger LANGUAGE plpgsql AS $$
    DECLARE r record;
    BEGIN
      FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
        IF r.object_identity LIKE '%temp_import_%' THEN
          EXECUTE format('CREATE INDEX ON %s (%I)', r.object_identity, ${literal(def.key.column)});
        END IF;
      END LOOP;
    END $$`);
  await api.query('DROP EVENT TRIGGER IF EXISTS bench_key_index');
  await api.query(
    `CREATE EVENT TRIGGER bench_key_index ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION bench_key_index()`,
  );
}

export async function removeKeyIndexTrigger(api: Pool): Promise<void> {
  await api.query('DROP EVENT TRIGGER IF EXISTS bench_key_index');
  await api.query(`DROP FUNCTION IF EXISTS ${ident('bench_key_index')}()`);
}
