"""autorag-dagster."""
