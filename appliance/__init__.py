"""On-premises compliance and governance proxy for large language models."""

__version__ = "0.1.0"
