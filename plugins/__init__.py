"""Endpoint plugins: Sage 50FR over ODBC, the Sales Management REST API (and its simulator)."""
