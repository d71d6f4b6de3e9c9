"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from autorag_dagster.defs import build_definitions

defs = build_definitions()
