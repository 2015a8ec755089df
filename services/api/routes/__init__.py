"""One router module per resource; ``ROUTERS`` lists them for the app factory."""
