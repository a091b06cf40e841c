// Runs SQL files in DuckDB through @duckdb/node-api (installed by
// scripts/deps.sh test into tests/duckdb/node_modules). Used by
// tests/api/test_duckdb_roundtrip.py to run GET /v1/pmi/sql?dialect=duckdb
// verbatim.
//   node run_sql.mjs DATABASE FILE.sql [FILE.sql ...]
// Each file is run whole (all its statements, in order). Prints the DuckDB
// version; exits 1 with the error message when a statement fails.
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

const [db, ...files] = process.argv.slice(2);
if (!db || files.length === 0) {
  console.error('usage: node run_sql.mjs DATABASE FILE.sql [FILE.sql ...]');
  process.exit(2);
}
try {
  const instance = await DuckDBInstance.create(db);
  const con = await instance.connect();
  const v = await con.runAndReadAll('SELECT version() AS v');
  console.log('duckdb', v.getRowObjects()[0].v);
  for (const f of files) {
    await con.run(readFileSync(f, 'utf8'));
    console.log('ran', f);
  }
  con.closeSync?.();
} catch (e) {
  console.error('duckdb error:', e.message);
  process.exit(1);
}
