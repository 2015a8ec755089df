"""Test kit shipped with the package: the seeded data generator and small factories."""
