"""Stores on MongoDB (PyMongo's async client): the users store may live there."""
