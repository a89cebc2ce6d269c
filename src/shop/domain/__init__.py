"""The shop's language: entities, value objects and rules. Standard library only."""
