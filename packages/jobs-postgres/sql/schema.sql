-- @shardwork/jobs-postgres schema "shardwork", versions 1 to 1
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('shardwork.migrate:' || 'shardwork', 0));
CREATE SCHEMA IF NOT EXISTS "shardwork";
CREATE TABLE IF NOT EXISTS "shardwork".migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
-- 1: jobs, queues, fences, paused handlers, cron ticks, given ids, throughput
CREATE TABLE "shardwork".queues (
  queue text PRIMARY KEY,
  partitions integer NOT NULL CHECK (partitions > 0),
  epoch text NOT NULL
);
CREATE TABLE "shardwork".fences (
  queue text NOT NULL,
  partition integer NOT NULL CHECK (partition >= 0),
  token bigint NOT NULL,
  PRIMARY KEY (queue, partition)
);
CREATE SEQUENCE "shardwork".job_seq AS bigint;
CREATE TABLE "shardwork".jobs (
  queue text NOT NULL,
  id text NOT NULL,
  partition integer NOT NULL CHECK (partition >= 0),
  handler text NOT NULL,
  state text NOT NULL
    CHECK (state IN ('scheduled', 'ready', 'running', 'retrying', 'completed', 'dead', 'cancelled')),
  key text,
  ordered boolean NOT NULL DEFAULT false,
  unique_key text,
  priority integer CHECK (priority BETWEEN 1 AND 100000),
  args json NOT NULL,
  traceparent text,
  enqueued_at bigint NOT NULL,
  run_at bigint NOT NULL,
  seq bigint NOT NULL DEFAULT nextval('"shardwork".job_seq'),
  fails integer NOT NULL DEFAULT 0 CHECK (fails >= 0),
  token bigint,
  started_at bigint,
  finished_at bigint,
  result json,
  progress json,
  error json,
  cancel json,
  waited boolean NOT NULL DEFAULT false,
  PRIMARY KEY (queue, id)
);
CREATE INDEX jobs_id ON "shardwork".jobs (id);
CREATE INDEX jobs_waiting ON "shardwork".jobs (queue, partition, run_at, seq)
  WHERE state IN ('scheduled', 'ready', 'retrying');
CREATE INDEX jobs_running ON "shardwork".jobs (queue, partition) WHERE state = 'running';
CREATE INDEX jobs_prioritized ON "shardwork".jobs (queue, partition)
  WHERE priority IS NOT NULL AND state IN ('scheduled', 'ready', 'retrying');
CREATE INDEX jobs_finished ON "shardwork".jobs (queue, state, finished_at, seq)
  WHERE state IN ('completed', 'dead', 'cancelled');
CREATE INDEX jobs_lines ON "shardwork".jobs (queue, partition, key, seq)
  WHERE ordered AND state IN ('scheduled', 'ready', 'running', 'retrying');
CREATE UNIQUE INDEX jobs_unique ON "shardwork".jobs (queue, unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'ready', 'running', 'retrying');
CREATE TABLE "shardwork".paused (
  queue text NOT NULL,
  handler text NOT NULL,
  PRIMARY KEY (queue, handler)
);
CREATE TABLE "shardwork".cron (
  queue text NOT NULL,
  name text NOT NULL,
  last_tick bigint NOT NULL,
  PRIMARY KEY (queue, name)
);
CREATE TABLE "shardwork".given_ids (
  queue text NOT NULL,
  id text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (queue, id)
);
CREATE TABLE "shardwork".throughput (
  queue text NOT NULL,
  minute bigint NOT NULL,
  completed integer NOT NULL DEFAULT 0,
  failed integer NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, minute)
);
INSERT INTO "shardwork".migrations (version, name) VALUES (1, 'jobs, queues, fences, paused handlers, cron ticks, given ids, throughput');
COMMIT;
