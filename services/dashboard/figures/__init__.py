"""Figure builders: pure functions from gateway JSON to plotly figures (unit-tested without a browser)."""
