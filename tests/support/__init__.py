"""Test helpers shared by the test modules: servers and fixtures that tests start."""
