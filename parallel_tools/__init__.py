"""parallel-tools: cited web research for AI agents with Parallel's Task API."""

__version__ = "0.1.0"
