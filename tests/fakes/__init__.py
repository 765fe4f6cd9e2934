"""Loopback fakes of the external services mathbot talks to."""
