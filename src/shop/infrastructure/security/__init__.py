"""Password hashing, signed tokens and attempt throttling."""
