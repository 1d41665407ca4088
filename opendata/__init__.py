"""Gets the Belgian open-data sources into PostGIS: one connector per source, every run recorded."""
