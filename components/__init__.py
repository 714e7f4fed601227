"""One ComponentResource per platform layer."""
