-- OpenLineage (spec 2-0-2): every event (payload: the event as parsed, facets verbatim), the state
-- of each run, and the graph the events describe. Nodes are named `dataset:<namespace>:<name>`
-- and `job:<namespace>:<name>`; an edge runs from origin (upstream) to destination: input
-- dataset -> job -> output dataset.
CREATE TABLE lineage_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_kind TEXT NOT NULL CHECK (event_kind IN ('run', 'job', 'dataset')),
    event_type TEXT,
    event_time BIGINT NOT NULL,
    run_id TEXT,
    job_namespace TEXT,
    job_name TEXT,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX lineage_events_run ON lineage_events (run_id, id);
CREATE INDEX lineage_events_job ON lineage_events (job_namespace, job_name, id);

-- started_at/ended_at are event times; updated_at is the event time of the latest event applied,
-- so a late event never moves a finished run back.
CREATE TABLE lineage_runs (
    run_id TEXT PRIMARY KEY,
    job_namespace TEXT NOT NULL,
    job_name TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX lineage_runs_job ON lineage_runs (job_namespace, job_name, updated_at);

-- facets: the node's dataset or job facets, merged by name, the newest event's facet winning
-- (facets are additive in OpenLineage). input_facets/output_facets: the same for the facets a
-- dataset carried as a run's input or output. latest_run_id: a job's newest run.
CREATE TABLE lineage_nodes (
    id TEXT PRIMARY KEY,
    node_type TEXT NOT NULL CHECK (node_type IN ('dataset', 'job')),
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    facets TEXT NOT NULL,
    input_facets TEXT NOT NULL,
    output_facets TEXT NOT NULL,
    latest_run_id TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE lineage_edges (
    origin TEXT NOT NULL,
    destination TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (origin, destination)
);
CREATE INDEX lineage_edges_destination ON lineage_edges (destination, origin);
