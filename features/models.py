"""Feature rows per parcel arrive with the feature registry (valuation engine and open-data issues)."""
