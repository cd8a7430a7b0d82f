"""A second plugin, written as a plugin author outside robomail would: contract imports only."""
