"""Test support shared by the suites: a running VCH (`vch.py`) and the pytest fixtures built on it (`fixtures.py`,
loaded by the root conftest). Nothing here is imported by vic_ref itself."""
