"""Tocsin's own signals: Prometheus metrics (`metrics`) and error reporting (`error_tracking`)."""
