"""Alert rules as data: grammar, validated tree, evaluation and the per-(rule, pair) state machines.

Pure code shared by the alerts worker and the api; no I/O here.
"""
