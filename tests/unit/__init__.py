"""Pure logic: no server, no database, no Airflow run."""
