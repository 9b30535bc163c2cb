"""Data: synthetic generator (and, later, DataModules)."""
