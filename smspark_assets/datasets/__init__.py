"""Demo data generators, one module per dataset (``credit``: daily partitions of credit applications)."""
