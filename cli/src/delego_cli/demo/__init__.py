"""Demo data and the seed story."""
