"""newsstance.evaluate stage."""
