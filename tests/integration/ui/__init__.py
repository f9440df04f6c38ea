"""The run-reports UI plugin in Airflow's API server, against a migrated metadata database."""
