"""Commands that work on any pain.008 file: verify, describe."""
