"""Descent: gradient descent as a service."""
