"""One Airflow hook per system: Canvas LMS and Follett Aspen."""
