"""Typed stack configuration and the wiring of the platform's components."""
