"""Statbel connectors: statistical sectors, population, fiscal income (one module each)."""

from opendata.connectors.statbel import income, population, sectors  # noqa: F401
