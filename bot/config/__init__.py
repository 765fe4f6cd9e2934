"""Settings: read from the environment once, validated, frozen."""
