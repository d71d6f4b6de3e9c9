from autorag_dagster.cli import app

app()
