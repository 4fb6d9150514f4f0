-- Runs once, on the first start of an empty data volume (docker-entrypoint-initdb.d).
-- The two databases Freshet works between, as scripts/services.sh creates them locally.
CREATE DATABASE freshet_catalog;
CREATE DATABASE freshet_api;

-- The copy benchmark compares against Openverse's postgres_fdw copy; the extension ships with PostgreSQL.
\connect freshet_api
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
