"""Test doubles for hardware libraries this machine lacks; each says what it stands in for."""
