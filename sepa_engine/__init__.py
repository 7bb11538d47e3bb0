"""sepa-engine: SEPA Core Direct Debit batch engine."""

__version__ = "0.1.0"
