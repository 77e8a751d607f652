"""Training and evaluation loops, and the efficiency measures. No method-specific branches here."""
