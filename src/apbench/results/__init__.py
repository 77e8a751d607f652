"""Run records in, tables and plots out. Nothing here parses log text."""
