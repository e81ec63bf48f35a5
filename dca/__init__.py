"""Recurring investment engine."""
