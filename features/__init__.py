"""Turns the open-data layers into one feature row per parcel (set-based SQL in PostGIS)."""
