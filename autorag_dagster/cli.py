"""The ``autorag`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="autorag",
    help="Turn folders of spoken audio into RAG assets (transcripts, speakers, topics, search).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("ollama-serve")
def ollama_serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(11434, help="Port to listen on."),
) -> None:
    """Serve Ollama's HTTP API from packaged models (for laptops and CI; not needed on a GPU host).

    Honours OLLAMA_NUM_PARALLEL, OLLAMA_MAX_LOADED_MODELS, OLLAMA_KEEP_ALIVE and OLLAMA_MAX_QUEUE.
    """
    from autorag_dagster.localserve.server import serve

    serve(host=host, port=port)


if __name__ == "__main__":  # pragma: no cover
    app()
