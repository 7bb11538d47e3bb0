"""Pure domain rules: no database, no files, no clock, no network."""
