"""The services: one folder each, one process each; `pairs <service>` runs one."""
