"""Engines behind the catalog's ports (`search_index.SearchIndex`)."""
