"""Screens and modals of the dashboard: one module each."""
