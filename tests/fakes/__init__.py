"""Fake outside servers (port-level test doubles) for tests."""
