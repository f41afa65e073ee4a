-- One PostgreSQL server, two databases: Optuna and MLflow each keep their own Alembic history.
CREATE DATABASE optuna OWNER bandsearch;
CREATE DATABASE mlflow OWNER bandsearch;
