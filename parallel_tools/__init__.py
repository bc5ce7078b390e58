"""parallel-tools."""
