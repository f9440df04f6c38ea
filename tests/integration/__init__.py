"""Each part against something real: a local HTTP server, a database, the sandbox, Airflow's API app."""
