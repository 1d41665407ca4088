"""Fixtures of the valuation tests live in tests/conftest.py (the web tests share them)."""
